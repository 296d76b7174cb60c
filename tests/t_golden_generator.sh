#!/bin/sh
# The alternate-configuration golden files in tests/golden/ come from PyTorch
# generators in scripts/. For each generator this test proves it equals the
# official reference (it reproduces the shipped golden files within their
# READMEs' tolerances) and that the committed files are what it writes: the
# same inputs and weights byte for byte, the computed tensors equal up to the
# float rounding of this CPU (scripts/compare_golden.py).
cd "$(dirname "$0")/.." || exit 1
GOLDEN=${REEL_GOLDEN_DIR:-../shared/golden}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! $PY -c 'import torch' 2>/dev/null; then
    echo "FAIL - golden generators: python3-torch is not installed (make deps installs it)"
    exit 0
fi

# verifies SCRIPT ARGS...: the generator reproduces the shipped reference.
verifies() {
    if $PY "$@" >"$tmp/log" 2>&1; then
        echo "ok - $(basename "$1") reproduces the shipped reference"
    else
        cat "$tmp/log"
        echo "FAIL - $(basename "$1") reproduces the shipped reference"
    fi
}

# writes DIR "FILES" SCRIPT ARGS...: running the generator writes into DIR
# the files tests/golden/FILES ("" = every file it wrote).
writes() {
    dir=$1 files=$2
    shift 2
    if $PY "$@" >"$tmp/log" 2>&1; then
        [ -n "$files" ] || files=$(cd "$dir" && ls ./*.safetensors)
        for b in $files; do
            b=$(basename "$b")
            if why=$($PY scripts/compare_golden.py "tests/golden/$b" "$dir/$b"); then
                echo "ok - $b is what $(basename "$1") writes ($why)"
            else
                echo "FAIL - $b is what $(basename "$1") writes: $why"
            fi
        done
    else
        cat "$tmp/log"
        echo "FAIL - $(basename "$1") ran"
    fi
}

# Wan DiT, VAEs, schedules and trajectories.
verifies scripts/make_golden.py --verify "$GOLDEN"
writes "$tmp/gen" "" scripts/make_golden.py --out "$tmp/gen"

# umT5 encoder.
verifies scripts/bench_umt5_torch.py --golden "$GOLDEN/umt5_encoder.safetensors"
writes "$tmp" alt_umt5_encoder.safetensors \
    scripts/bench_umt5_torch.py --write-alt "$tmp/alt_umt5_encoder.safetensors"

# Ovi FusionModel (plain and skip-layer).
verifies scripts/make_golden_ovi.py --verify "$GOLDEN"
writes "$tmp/ovi" "alt_ovi_fusion.safetensors alt_ovi_fusion_slg.safetensors" \
    scripts/make_golden_ovi.py --out "$tmp/ovi" --shipped "$GOLDEN"

# MMAudio mel converter, VAE and BigVGAN vocoder.
verifies scripts/make_golden_audio.py --verify "$GOLDEN"
writes "$tmp/audio" "alt_mel.safetensors alt_mmaudio_vae.safetensors alt_bigvgan.safetensors" \
    scripts/make_golden_audio.py --golden "$GOLDEN" --out "$tmp/audio"
