#!/bin/sh
# End to end with a joint video + audio model (tests/configs/tiny-ovi.yaml,
# seeded random weights written here by `reel init-weights`): the clip has
# an audio stream (AAC at 48 kHz from the vocoder's 16 kHz, or PCM in MOV)
# as long as the video to within one audio frame; the spec's audio keys
# reach the canonical spec; a render killed at a denoise step and resumed is
# byte-identical; an audio key on a model without audio is a warning.
cd "$(dirname "$0")/.." || exit 1
. tests/toy_weights.sh
BUILD=${REEL_BUILD:-build}
REEL="$BUILD/reel"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

export REEL_TINY_OVI_WEIGHTS="$tmp/w"
toy_weights "init-weights writes the fusion, audio VAE and vocoder files" \
    tests/configs/tiny-ovi.yaml "$tmp/w" fusion.safetensors audio_vae.safetensors vocoder.safetensors

cat >"$tmp/job.yaml" <<EOF
version: 1
model: $(pwd)/tests/configs/tiny-ovi.yaml
seed: 7
prompt: A drummer plays a short fill on a small stage.
sampler: {steps: 3, audio_guidance: 2.5, slg_layer: 1}
audio_negative_prompt: "robotic, muffled"
EOF

sval() { # sval FILE STREAM ENTRY
    ffprobe -v error -select_streams "$2" -show_entries "stream=$3" \
        -of default=noprint_wrappers=1:nokey=1 "$1" 2>/dev/null | head -n 1
}

ref="$tmp/ref/clip.mp4"
mkdir -p "$tmp/ref"
if "$REEL" render "$tmp/job.yaml" -o "$ref" --json 2>"$tmp/log"; then
    echo "ok - render with a joint-audio model"
else
    tail -5 "$tmp/log"
    echo "FAIL - render with a joint-audio model"
fi
acodec=$(sval "$ref" a:0 codec_name)
arate=$(sval "$ref" a:0 sample_rate)
adur=$(sval "$ref" a:0 duration)
vdur=$(sval "$ref" v:0 duration)
[ "$acodec" = aac ] && [ "$arate" = 48000 ] && echo "ok - audio stream: AAC at 48 kHz" ||
    echo "FAIL - audio stream: AAC at 48 kHz: got '$acodec' '$arate'"
# 17 frames at 24 fps; one AAC frame is 1024 samples at 48 kHz
if awk -v a="$adur" -v v="$vdur" 'BEGIN { d = a - v; if (d < 0) d = -d;
    exit !(a > 0 && v > 0.7083 && v < 0.7084 && d <= 1024 / 48000) }'; then
    echo "ok - audio duration equals the video's ($adur s vs $vdur s)"
else
    echo "FAIL - audio duration equals the video's: audio '$adur' video '$vdur'"
fi
vol=$(ffmpeg -v info -i "$ref" -map 0:a -af volumedetect -f null - 2>&1 |
    sed -n 's/.*max_volume: \(-*[0-9.]*\) dB.*/\1/p')
if [ -n "$vol" ] && awk -v m="$vol" 'BEGIN { exit !(m > -60) }'; then
    echo "ok - the audio is not silence (max $vol dB)"
else
    echo "FAIL - the audio is not silence: max_volume '$vol'"
fi
if grep -q 'audio_guidance: 2.5' "$ref.json" && grep -q 'slg_layer: 1' "$ref.json" &&
    grep -q 'audio_negative_prompt' "$ref.json"; then
    echo "ok - the audio sampler keys are in the manifest's spec"
else
    echo "FAIL - the audio sampler keys are in the manifest's spec"
fi
if grep -q '"audio_vae": {"path": .*"sha256": "[0-9a-f]\{64\}"' "$ref.json" &&
    grep -q '"vocoder": {"path": .*"sha256": "[0-9a-f]\{64\}"' "$ref.json"; then
    echo "ok - the manifest hashes the audio VAE and vocoder weights"
else
    echo "FAIL - the manifest hashes the audio VAE and vocoder weights"
fi

# PCM in MOV, 16 kHz -> 48 kHz s16.
"$REEL" render "$tmp/job.yaml" -o "$tmp/pcm/clip.mov" --set output.audio_codec=pcm --json \
    2>"$tmp/log-pcm"
pc=$(sval "$tmp/pcm/clip.mov" a:0 codec_name)
pd=$(sval "$tmp/pcm/clip.mov" a:0 duration)
if [ "$pc" = pcm_s16le ] && awk -v a="$pd" 'BEGIN { d = a - 17 / 24; if (d < 0) d = -d;
    exit !(d <= 1024 / 48000) }'; then
    echo "ok - PCM audio in MOV, as long as the video"
else
    tail -3 "$tmp/log-pcm"
    echo "FAIL - PCM audio in MOV, as long as the video: '$pc' '$pd'"
fi

# The bytes must not depend on what the heap held: glibc's MALLOC_PERTURB_
# fills fresh allocations with a pattern (x264's AVX-512 code read such
# memory; a resumed render then differed from an uninterrupted one).
mkdir -p "$tmp/perturb"
if MALLOC_PERTURB_=165 "$REEL" render "$tmp/job.yaml" -o "$tmp/perturb/clip.mp4" 2>"$tmp/log-p" &&
    cmp -s "$tmp/perturb/clip.mp4" "$ref"; then
    echo "ok - output independent of heap contents (MALLOC_PERTURB_)"
else
    tail -3 "$tmp/log-p"
    echo "FAIL - output independent of heap contents (MALLOC_PERTURB_): the bytes differ"
fi

# Kill after a denoise step (and mid-decode), resume: the same bytes.
for point in denoise:0 denoise:1 decode:2 mux:0; do
    d="$tmp/k-$(echo "$point" | tr : _)"
    mkdir -p "$d"
    REEL_KILL_AT=$point "$REEL" render "$tmp/job.yaml" -o "$d/clip.mp4" --json 2>"$d/log"
    rc=$?
    if [ "$rc" -ne 137 ] || [ -e "$d/clip.mp4" ]; then
        echo "FAIL - kill at $point: exit $rc (want 137, SIGKILL) or output already there"
        continue
    fi
    if "$REEL" render "$tmp/job.yaml" -o "$d/clip.mp4" --json 2>"$d/log2" &&
        cmp -s "$d/clip.mp4" "$ref" && [ "$(find "$d" -name '*.tmp-*' | wc -l)" = 0 ]; then
        echo "ok - joint audio: killed at $point, resumed, byte-identical output"
    else
        tail -3 "$d/log2"
        echo "FAIL - joint audio: killed at $point, resumed, byte-identical output"
    fi
done

# Audio keys on a model without audio (tests/configs/tiny-wan.yaml, a toy
# Wan2.1 t2v model): a warning naming the model, not an error; on the
# default model, which has audio, the same key is taken without a warning.
"$REEL" validate --set sampler.audio_guidance=2 --set "model=$(pwd)/tests/configs/tiny-wan.yaml" \
    examples/hello.yaml >"$tmp/v.out" 2>&1
rc=$?
if [ "$rc" = 0 ] && grep -q 'sampler.audio_guidance: ignored: tiny-wan makes no audio' "$tmp/v.out"; then
    echo "ok - audio keys on a model without audio: a warning"
else
    cat "$tmp/v.out"
    echo "FAIL - audio keys on a model without audio: a warning (exit $rc)"
fi
"$REEL" validate --set sampler.audio_guidance=2 examples/hello.yaml >"$tmp/v2.out" 2>&1
rc=$?
if [ "$rc" = 0 ] && ! grep -q 'ignored' "$tmp/v2.out" && grep -q '^OK ' "$tmp/v2.out"; then
    echo "ok - audio keys on the default (audio) model: no warning"
else
    cat "$tmp/v2.out"
    echo "FAIL - audio keys on the default (audio) model: no warning (exit $rc)"
fi
