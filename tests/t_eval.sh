#!/bin/sh
# The metrics of `make eval-default` (scripts/eval_metrics.py) on ground
# truth: held-out synthetic clips encoded like reel's output (libx264 + AAC)
# must score colour_acc >= 0.95, shape_acc >= 0.9, coherent >= 0.9,
# sync_1f >= 0.9, and broken clips (wrong colour / shape, audio 3 frames
# late, silence, flicker, a dropped frame, noise) must score badly.
# tests/eval/check_metrics.py prints the ok/FAIL lines.
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
if ! "$PY" -c "import numpy" >/dev/null 2>&1; then
    echo "FAIL - eval: $PY with numpy is needed (apt install python3-numpy)"
    exit 0
fi
for t in ffmpeg ffprobe; do
    if ! command -v $t >/dev/null 2>&1; then
        echo "FAIL - eval: $t is needed (apt install ffmpeg)"
        exit 0
    fi
done
out=$(mktemp)
"$PY" tests/eval/check_metrics.py >"$out" 2>&1
rc=$?
grep -E '^((ok|FAIL) - |# )' "$out"
if [ $rc -ne 0 ] && ! grep -q '^FAIL - ' "$out"; then
    echo "FAIL - eval: check_metrics.py exited $rc: $(tail -5 "$out" | tr '\n' ' ')"
fi
rm -f "$out"
exit 0
