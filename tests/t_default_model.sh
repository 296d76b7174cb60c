#!/bin/sh
# The default model's generated files (Makefile block "default model"): they
# exist after `make`, `reel init-weights` regenerates them byte for byte
# (twice, into temporary copies of the config), the tokenizer retrains to
# the same bytes through the Makefile's own rule, refusals (existing files
# without --force, `trained: true`) change nothing, `reel info` describes
# the model, and the tokenizer encodes prompts to ids inside the encoder's
# vocabulary. tests/test_default_model.c runs the networks themselves.
cd "$(dirname "$0")/.." || exit 1
BUILD=${REEL_BUILD:-build}
REEL="$BUILD/reel"
ROOT=$(pwd)
DIR=configs/reel-default
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { echo "ok - $1"; }
fail() { echo "FAIL - $1: $2"; }

missing=""
for f in dit.safetensors vae.safetensors text_encoder.safetensors tokenizer.model; do
    [ -s "$DIR/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then
    ok "default model files exist"
else
    fail "default model files exist" "missing in $DIR:$missing (run make)"
    exit 0
fi

# Two generations into copies of the config (weights_dir is relative to the
# config, so each copy writes beside itself), compared with each other and
# with what make wrote.
for g in a b; do
    mkdir -p "$tmp/$g"
    cp configs/reel-default.yaml "$tmp/$g/"
    if ! "$REEL" init-weights "$tmp/$g/reel-default.yaml" >"$tmp/$g.log" 2>&1; then
        fail "init-weights into a copy ($g)" "$(cat "$tmp/$g.log")"
        exit 0
    fi
done
if grep -q "dit.safetensors" "$tmp/a.log" && grep -q "text_encoder" "$tmp/a.log"; then
    ok "init-weights prints what it wrote"
else
    fail "init-weights prints what it wrote" "$(cat "$tmp/a.log")"
fi
for f in dit vae text_encoder; do
    if cmp -s "$tmp/a/reel-default/$f.safetensors" "$tmp/b/reel-default/$f.safetensors"; then
        ok "$f weights: two generations are byte-identical"
    else
        fail "$f weights: two generations are byte-identical" "they differ"
    fi
    if cmp -s "$tmp/a/reel-default/$f.safetensors" "$DIR/$f.safetensors"; then
        ok "$f weights: make's file equals a fresh generation"
    else
        fail "$f weights: make's file equals a fresh generation" \
            "$DIR/$f.safetensors differs (stale? run make)"
    fi
done

# Refusals leave the files alone.
sum_before=$(cat "$tmp/a/reel-default/"*.safetensors | cksum)
"$REEL" init-weights --seed 7 "$tmp/a/reel-default.yaml" >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 4 ] && grep -q -- "--force" "$tmp/err" &&
    [ "$(cat "$tmp/a/reel-default/"*.safetensors | cksum)" = "$sum_before" ]; then
    ok "init-weights refuses to replace files without --force (exit 4, unchanged)"
else
    fail "init-weights refuses to replace files without --force" "exit $rc: $(cat "$tmp/err")"
fi
sed 's/^trained: false/trained: true/' "$tmp/a/reel-default.yaml" >"$tmp/a/trained.yaml"
"$REEL" init-weights --force "$tmp/a/trained.yaml" >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 3 ] && grep -q "trained" "$tmp/err" &&
    [ "$(cat "$tmp/a/reel-default/"*.safetensors | cksum)" = "$sum_before" ]; then
    ok "init-weights refuses a trained config even with --force (exit 3, unchanged)"
else
    fail "init-weights refuses a trained config" "exit $rc: $(cat "$tmp/err")"
fi
if "$REEL" init-weights --force --seed 7 "$tmp/a/reel-default.yaml" >/dev/null 2>"$tmp/err" &&
    ! cmp -s "$tmp/a/reel-default/dit.safetensors" "$DIR/dit.safetensors"; then
    ok "init-weights --force --seed 7 writes different weights"
else
    fail "init-weights --force --seed 7 writes different weights" "$(cat "$tmp/err")"
fi
"$REEL" init-weights --seed x reel-default >/dev/null 2>&1
rc=$?
[ "$rc" -eq 2 ] && ok "init-weights --seed x is a usage error (exit 2)" ||
    fail "init-weights --seed x is a usage error" "exit $rc"

# The tokenizer, retrained twice by the Makefile's own rule in scratch trees
# (the model records its relative input and prefix paths, so the trees
# mirror the checkout's layout).
if command -v spm_train >/dev/null 2>&1; then
    same=1
    for g in t1 t2; do
        mkdir -p "$tmp/$g/$DIR"
        cp "$DIR/corpus.txt" "$tmp/$g/$DIR/"
        if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$tmp/$g" -f "$ROOT/Makefile" "$DIR/tokenizer.model" >"$tmp/$g.log" 2>&1; then
            fail "tokenizer retrains ($g)" "$(tail -5 "$tmp/$g.log")"
            same=0
        elif ! cmp -s "$tmp/$g/$DIR/tokenizer.model" "$DIR/tokenizer.model"; then
            fail "tokenizer retrains to the same bytes ($g)" "differs from $DIR/tokenizer.model"
            same=0
        fi
    done
    [ "$same" -eq 1 ] && ok "tokenizer: two retrainings equal make's tokenizer.model byte for byte"
else
    fail "tokenizer retrains" "spm_train is not installed (package sentencepiece; make deps)"
fi

# reel info finds the model by name and sees every file.
if "$REEL" info reel-default >"$tmp/info" 2>&1; then
    if grep -q "^reel-default" "$tmp/info" && grep -q "trained *NO" "$tmp/info" &&
        [ "$(grep -c 'present' "$tmp/info")" -eq 4 ] && ! grep -q "missing" "$tmp/info"; then
        ok "reel info reel-default: untrained, all four files present"
    else
        fail "reel info reel-default" "$(cat "$tmp/info")"
    fi
else
    fail "reel info reel-default" "$(cat "$tmp/info")"
fi

# Prompts tokenize to ids below the encoder's vocabulary, text outside the
# corpus included (byte fallback).
vocab=$(sed -n 's/^  vocab: *\([0-9]*\).*/\1/p' configs/reel-default.yaml)
printf '%s\n' "a red circle bounces off the walls on a dark blue background" \
    "a red paper boat drifting on a calm blue lake, morning light" \
    "Zebra crossing at 東京, ünïcödé" >"$tmp/prompts"
if "$REEL" tokenize --model "$DIR/tokenizer.model" --eos <"$tmp/prompts" >"$tmp/ids" 2>&1; then
    bad=$(awk -v v="$vocab" 'NF == 0 { print "empty line " NR; exit }
        { for (i = 1; i <= NF; i++) if ($i !~ /^[0-9]+$/ || $i + 0 >= v) { print "line " NR ": " $i; exit } }' "$tmp/ids")
    if [ -n "$vocab" ] && [ "$(wc -l <"$tmp/ids")" -eq 3 ] && [ -z "$bad" ]; then
        ok "tokenize with the default tokenizer: ids below vocab $vocab ($(head -1 "$tmp/ids"))"
    else
        fail "tokenize with the default tokenizer" "vocab '$vocab', $bad: $(cat "$tmp/ids")"
    fi
else
    fail "tokenize with the default tokenizer" "$(cat "$tmp/ids")"
fi
