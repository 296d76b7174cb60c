#!/bin/sh
# Benchmarks, ours beside a reference: prints "bench: NAME ours=X ref=Y
# ratio=Z unit=U" lines (ratio > 1: reel is better) and '#' comment lines;
# exits non-zero if any bench failed to run.
#   sgemm            the backend's sgemm vs our own measured fp32 FMA peak
#   dit_wan13b_<N>l  one Wan2.1-1.3B-shaped DiT forward with N of the 30
#                    layers vs an independent PyTorch forward on the same
#                    weights (scripts/bench_dit_torch.py)
#   umt5_xxl_<N>l    a 128-token prompt at umT5-XXL widths vs PyTorch
#   audio_decode_5s  MMAudio VAE decode + BigVGAN, 5 s at 16 kHz, real-time factor
#   decode_peak_rss  peak RSS of the streaming decode for N and 4N frames
# Environment: BENCH_THREADS (2), BENCH_DIT_LAYERS (6), BENCH_RUNS (2).
BUILD=${1:-build}
cd "$(dirname "$0")/.." || exit 1
THREADS=${BENCH_THREADS:-2}
LAYERS=${BENCH_DIT_LAYERS:-6}
RUNS=${BENCH_RUNS:-2}
DIR="$BUILD/bench"
# Debian's python3 has python3-torch; a python3 earlier on PATH (pyenv,
# venv) usually does not.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
status=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Shows a failed step's output as comments and marks the run failed.
failed() { # failed WHAT LOG
    echo "# FAILED: $1"
    sed 's/^/#   /' "$2"
    status=1
}

# sgemm: the binary prints its own bench line.
if "$BUILD/tests/bench_sgemm" --threads "$THREADS" >"$tmp/sgemm" 2>&1 &&
    grep -q '^bench: sgemm ' "$tmp/sgemm"; then
    grep -E '^(bench: |#)' "$tmp/sgemm"
else
    failed "bench_sgemm" "$tmp/sgemm"
fi

# DiT: ours first (it also writes the weights/inputs if missing, and its
# output for the comparison), then the PyTorch reference on the same files.
name="dit_wan13b_${LAYERS}l"
if "$BUILD/tests/bench_dit" --layers "$LAYERS" --dir "$DIR" --threads "$THREADS" \
    --runs "$RUNS" >"$tmp/ours" 2>&1 && grep -q '^seconds=' "$tmp/ours"; then
    grep '^#' "$tmp/ours"
    if "$PY" scripts/bench_dit_torch.py --weights "$DIR/wan13b_${LAYERS}l_bf16.safetensors" \
        --inputs "$DIR/dit_inputs.safetensors" --ours "$DIR/dit_out_ours.safetensors" \
        --runs "$RUNS" --threads "$THREADS" >"$tmp/ref" 2>&1 &&
        grep -q '^seconds=' "$tmp/ref"; then
        grep '^#' "$tmp/ref"
        ours=$(sed -n 's/^seconds=//p' "$tmp/ours")
        ref=$(sed -n 's/^seconds=//p' "$tmp/ref")
        awk -v n="$name" -v o="$ours" -v r="$ref" \
            'BEGIN { printf "bench: %s ours=%.3f ref=%.3f ratio=%.3f unit=s\n", n, o, r, r / o }'
    else
        failed "$name reference (scripts/bench_dit_torch.py)" "$tmp/ref"
    fi
else
    failed "$name (bench_dit)" "$tmp/ours"
fi
# umT5-XXL shapes (4 of 24 layers: the full bf16 file is 11 GB): a
# 128-token prompt, ours vs an independent PyTorch encoder on the same weights.
UL=${BENCH_UMT5_LAYERS:-4}
name="umt5_xxl_${UL}l"
if "$BUILD/tests/bench_umt5" --layers "$UL" --dir "$DIR" --threads "$THREADS" --runs "$RUNS" \
    >"$tmp/uo" 2>&1 && grep -q '^seconds=' "$tmp/uo"; then
    grep '^#' "$tmp/uo"
    if "$PY" scripts/bench_umt5_torch.py --weights "$DIR/umt5_xxl_${UL}l_random.safetensors" \
        --ids "$DIR/umt5_ids_128.safetensors" --ours "$DIR/umt5_out_ours.safetensors" \
        --runs "$RUNS" --threads "$THREADS" >"$tmp/ur" 2>&1 && grep -q '^seconds=' "$tmp/ur"; then
        grep '^#' "$tmp/ur"
        awk -v n="$name" -v o="$(sed -n 's/^seconds=//p' "$tmp/uo")" \
            -v r="$(sed -n 's/^seconds=//p' "$tmp/ur")" \
            'BEGIN { printf "bench: %s ours=%.3f ref=%.3f ratio=%.3f unit=s\n", n, o, r, r / o }'
    else
        failed "$name reference (scripts/bench_umt5_torch.py)" "$tmp/ur"
    fi
else
    failed "$name (bench_umt5)" "$tmp/uo"
fi

# Streaming decode: peak RSS of a default-model render of N frames and of
# about 4N frames (both 1 + 4k). ours = the 4N clip, ref = the N clip, so a
# ratio near 1 means memory does not grow with the clip's length. N is past
# x264's 40-frame lookahead, which is bounded encoder state of its own.
N1=65
N4=257
if "$PY" scripts/bench_render_rss.py "$BUILD/reel" examples/hello.yaml "$N1" "$N4" \
    >"$tmp/rss" 2>&1 && grep -q '^bench: ' "$tmp/rss"; then
    grep -E '^(bench: |#)' "$tmp/rss"
else
    failed "render peak RSS (scripts/bench_render_rss.py)" "$tmp/rss"
fi
# Audio decode at the real MMAudio/Ovi 16 kHz widths (VAE decoder hidden
# 384 x (1,2,4), BigVGAN 1536 channels): Ovi's 5 s latent [20,157] -> mel
# [80,314] -> 80384 samples, as a real-time factor (seconds of audio per
# second of compute, higher is better), ours vs an independent PyTorch
# decode (scripts/bench_audio_torch.py) on the same f32 weights.
name="audio_decode_5s"
if "$BUILD/tests/bench_audio" --latents 157 --dir "$DIR" --threads "$THREADS" --runs "$RUNS" \
    >"$tmp/ao" 2>&1 && grep -q '^seconds=' "$tmp/ao"; then
    grep '^#' "$tmp/ao"
    if "$PY" scripts/bench_audio_torch.py --vae "$DIR/mmaudio_vae16k_dec_f32.safetensors" \
        --vocoder "$DIR/bigvgan16k_f32.safetensors" --latent "$DIR/audio_latent_157.safetensors" \
        --ours "$DIR/audio_out_ours.safetensors" --runs "$RUNS" --threads "$THREADS" \
        >"$tmp/ar" 2>&1 && grep -q '^seconds=' "$tmp/ar"; then
        grep '^#' "$tmp/ar"
        awk -v n="$name" -v a="$(sed -n 's/^audio_seconds=//p' "$tmp/ao")" \
            -v o="$(sed -n 's/^seconds=//p' "$tmp/ao")" -v r="$(sed -n 's/^seconds=//p' "$tmp/ar")" \
            'BEGIN { printf "bench: %s ours=%.3f ref=%.3f ratio=%.3f unit=x_realtime\n", n, a / o, a / r, r / o }'
    else
        failed "$name reference (scripts/bench_audio_torch.py)" "$tmp/ar"
    fi
else
    failed "$name (bench_audio)" "$tmp/ao"
fi

exit $status
