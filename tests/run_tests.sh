#!/bin/sh
# Runs every test: the C test binaries in BUILD/tests and the shell tests
# tests/t_*.sh. Each prints "ok - NAME" / "FAIL - NAME: why" lines; a binary
# that dies without reporting counts as one failure. With a second argument
# ASAN_BUILD, every test binary and the golden checks run again from that
# sanitizer build. Ends with "N passed, N failed".
BUILD=${1:-build}
ASAN_BUILD=${2:-}
cd "$(dirname "$0")/.." || exit 1
pass=0
fail=0

# The reference tensors live beside the checkout (../shared/golden); every
# test reads REEL_GOLDEN_DIR, so resolve it once here for clones elsewhere.
if [ -z "${REEL_GOLDEN_DIR:-}" ]; then
    for d in ../shared/golden /work/shared/golden; do
        if [ -d "$d/real" ]; then
            REEL_GOLDEN_DIR=$(cd "$d" && pwd)
            break
        fi
    done
fi
if [ -z "${REEL_GOLDEN_DIR:-}" ]; then
    echo "FAIL - setup: no reference directory (../shared/golden); set REEL_GOLDEN_DIR"
    fail=1
fi
export REEL_GOLDEN_DIR

run_one() { # run_one LABEL BUILD_DIR COMMAND...
    label=$1
    shift
    b=$1
    shift
    echo "== $label"
    out=$(mktemp)
    REEL_BUILD="$b" "$@" >"$out" 2>&1
    rc=$?
    sed "s/^\(ok\|FAIL\) - /\1 - $(echo "$label" | sed 's/[\/&]/\\&/g'): /" "$out"
    p=$(grep -c '^ok - ' "$out")
    f=$(grep -c '^FAIL - ' "$out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL - $label: exited with status $rc without reporting a failure"
        f=1
    fi
    pass=$((pass + p))
    fail=$((fail + f))
    rm -f "$out"
}

for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] && run_one "$(basename "$t")" "$BUILD" "$t"
done
for t in tests/t_*.sh; do
    [ -e "$t" ] && run_one "$(basename "$t" .sh)" "$BUILD" "$t"
done
if [ -n "$ASAN_BUILD" ]; then
    for t in "$ASAN_BUILD"/tests/test_*; do
        [ -x "$t" ] && run_one "asan $(basename "$t")" "$ASAN_BUILD" "$t"
    done
    run_one "asan t_golden" "$ASAN_BUILD" tests/t_golden.sh
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
