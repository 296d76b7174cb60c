#!/bin/sh
# `reel tokenize` against spm_encode: a deterministic 12,000-line mixed
# corpus (scripts/make_tokenizer_corpus.py: many scripts, emoji, blank runs,
# tabs, empty and very long lines, bad UTF-8), four models trained here with
# spm_train (unigram and BPE, byte fallback on and off), and the two outputs
# compared line by line; with --eos too for one model. Then the error paths.
cd "$(dirname "$0")/.." || exit 1
BUILD=${REEL_BUILD:-build}
REEL="$BUILD/reel"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for tool in spm_train spm_encode; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "FAIL - tokenizer: $tool is not installed (package sentencepiece; make deps)"
        exit 0
    fi
done
if ! "$PY" scripts/make_tokenizer_corpus.py --lines 12000 --train-lines 3000 \
    "$tmp/train.txt" "$tmp/corpus.txt" >"$tmp/gen.log" 2>&1; then
    cat "$tmp/gen.log"
    echo "FAIL - tokenizer: corpus generation"
    exit 0
fi
lines=$(wc -l <"$tmp/corpus.txt")
if [ "$lines" -ge 10000 ]; then
    echo "ok - tokenizer corpus has $lines lines"
else
    echo "FAIL - tokenizer corpus has $lines lines, want >= 10000"
fi

# Reports the first differing line of two id files, or ok.
compare() { # compare LABEL OURS REF
    if cmp -s "$2" "$3"; then
        echo "ok - $1: $(wc -l <"$3") lines identical"
    else
        n=$(awk 'NR == FNR { a[FNR] = $0; next } a[FNR] != $0 { print FNR; exit }' "$2" "$3")
        [ -n "$n" ] || n="(line count: $(wc -l <"$2") vs $(wc -l <"$3"))"
        echo "FAIL - $1: first difference at line $n"
    fi
}

for spec in unigram:true unigram:false bpe:true bpe:false; do
    type=${spec%:*}
    bf=${spec#*:}
    name="${type}_bf${bf}"
    if ! spm_train --input="$tmp/train.txt" --model_prefix="$tmp/$name" --vocab_size=1200 \
        --model_type="$type" --byte_fallback="$bf" --input_sentence_size=3000 \
        --hard_vocab_limit=false --num_threads=2 --minloglevel=2 >"$tmp/train.log" 2>&1; then
        tail -5 "$tmp/train.log"
        echo "FAIL - tokenizer $name: spm_train"
        continue
    fi
    m="$tmp/$name.model"
    spm_encode --model="$m" --output_format=id <"$tmp/corpus.txt" >"$tmp/ref" 2>"$tmp/ref.err"
    if ! "$REEL" tokenize --model "$m" <"$tmp/corpus.txt" >"$tmp/ours" 2>"$tmp/ours.err"; then
        cat "$tmp/ours.err"
        echo "FAIL - tokenizer $name: reel tokenize exited with an error"
        continue
    fi
    compare "tokenizer $name" "$tmp/ours" "$tmp/ref"
    if [ "$name" = unigram_bftrue ]; then
        spm_encode --model="$m" --output_format=id --extra_options=eos \
            <"$tmp/corpus.txt" >"$tmp/ref"
        "$REEL" tokenize --model "$m" --eos <"$tmp/corpus.txt" >"$tmp/ours" 2>&1
        compare "tokenizer $name --eos" "$tmp/ours" "$tmp/ref"
    fi
done

# Errors: a file that is not a model, a missing --model.
echo "not a model" >"$tmp/bad.model"
echo hi | "$REEL" tokenize --model "$tmp/bad.model" >/dev/null 2>"$tmp/err"
rc=$?
if [ "$rc" -eq 3 ] && grep -q "bad.model" "$tmp/err"; then
    echo "ok - tokenize refuses a file that is not a model (exit 3, names it)"
else
    echo "FAIL - tokenize refuses a file that is not a model: exit $rc: $(cat "$tmp/err")"
fi
echo hi | "$REEL" tokenize >/dev/null 2>&1
rc=$?
if [ "$rc" -eq 2 ]; then
    echo "ok - tokenize without --model is a usage error (exit 2)"
else
    echo "FAIL - tokenize without --model is a usage error: exit $rc"
fi
