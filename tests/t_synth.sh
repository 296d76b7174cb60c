#!/bin/sh
# The synthetic training data (scripts/synth, issue 6): determinism, caption
# grammar, held-out split, rendering and audio against the analytic ground
# truth, speed, preview. scripts/synth/test_synth.py prints the ok/FAIL lines.
cd "$(dirname "$0")/.." || exit 1
PY=/usr/bin/python3
if ! "$PY" -c "import numpy" >/dev/null 2>&1; then
    echo "FAIL - synth: $PY with numpy is needed (apt install python3-numpy)"
    exit 0
fi
out=$(mktemp)
"$PY" scripts/synth/test_synth.py >"$out" 2>&1
rc=$?
grep -E '^((ok|FAIL) - |# )' "$out"
if [ $rc -ne 0 ] && ! grep -q '^FAIL - ' "$out"; then
    echo "FAIL - synth: test_synth.py exited $rc: $(tail -5 "$out" | tr '\n' ' ')"
fi
rm -f "$out"
exit 0
