#!/bin/sh
# Golden parity: `reel check` on every shipped reference file (Wan DiT, VAEs,
# samplers, umT5, Ovi fusion, MMAudio mel/VAE, BigVGAN) and on the
# alternate-configuration files in tests/golden/, each must PASS;
# and a copy of a golden file with one expected value nudged must FAIL, so
# the check is shown to be able to fail.
cd "$(dirname "$0")/.." || exit 1
BUILD=${REEL_BUILD:-build}
REEL="$BUILD/reel"
GOLDEN=${REEL_GOLDEN_DIR:-../shared/golden}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for f in "$GOLDEN"/*.safetensors tests/golden/*.safetensors; do
    [ -e "$f" ] || { echo "FAIL - golden $f: file not found"; continue; }
    name="golden $(basename "$f")"
    if "$REEL" check --verbose "$f" >"$tmp/out" 2>&1 && grep -q "^PASS " "$tmp/out"; then
        echo "ok - $name"
    else
        cat "$tmp/out"
        echo "FAIL - $name: reel check did not pass"
    fi
done

# A nudged expected value must be caught, and a computation reel does not
# know must be refused: tests/tool_golden_edit rewrites a copy of the file.
EDIT="$BUILD/tests/tool_golden_edit"
src="$GOLDEN/wan21_dit_t2v.safetensors"
"$EDIT" "$src" "$tmp/nudged.safetensors" --nudge out.x 1e-3 >"$tmp/out" 2>&1 || cat "$tmp/out"
"$REEL" check "$tmp/nudged.safetensors" >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "^FAIL " "$tmp/out" && grep -q "out.x .*FAIL" "$tmp/out"; then
    echo "ok - check fails on a nudged out.x"
else
    cat "$tmp/out"
    echo "FAIL - check fails on a nudged out.x: exit $rc"
fi

"$EDIT" "$src" "$tmp/unknown.safetensors" --meta reference "example/repo@0 model.py Unknown" \
    >"$tmp/out" 2>&1 || cat "$tmp/out"
"$REEL" check "$tmp/unknown.safetensors" >"$tmp/out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "^FAIL " "$tmp/out" && grep -q "no computation of reel matches" "$tmp/out"; then
    echo "ok - check refuses a computation it does not run"
else
    cat "$tmp/out"
    echo "FAIL - check refuses a computation it does not run: exit $rc"
fi
