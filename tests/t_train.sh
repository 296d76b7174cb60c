#!/bin/sh
# Training of the default model (scripts/train, issue 6): the VAE used for
# training reproduces the official golden file, checkpoint/resume is
# bit-identical after SIGTERM and SIGKILL, 30 steps lower the loss, and the
# exported weights have reel's tensor table and load in `reel info`; the DiT
# stage runs end to end on 4 clips (prepare, train, resume, export with the
# C parity check, a render read back by ffprobe).
# scripts/train/test_train.py prints the ok/FAIL lines (about 2 min).
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
if ! "$PY" -c "import torch, numpy, yaml" >/dev/null 2>&1; then
    echo "FAIL - train: $PY with torch, numpy and yaml is needed (apt install python3-torch python3-yaml)"
    exit 0
fi
out=$(mktemp)
OMP_NUM_THREADS=1 "$PY" scripts/train/test_train.py >"$out" 2>&1
rc=$?
OMP_NUM_THREADS=1 "$PY" scripts/train/test_train_audio.py >>"$out" 2>&1 || rc=$?
OMP_NUM_THREADS=1 "$PY" scripts/train/test_train_dit.py >>"$out" 2>&1 || rc=$?
grep -E '^((ok|FAIL) - |# )' "$out"
if [ $rc -ne 0 ] && ! grep -q '^FAIL - ' "$out"; then
    echo "FAIL - train: test_train.py exited $rc: $(tail -5 "$out" | tr '\n' ' ')"
fi
rm -f "$out"
exit 0
