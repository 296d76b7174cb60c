#!/bin/sh
# End to end: `reel render`, read back with ffprobe.
#
# The default model (configs/reel-default.yaml, a joint audio-video model
# with frame conditioning): examples/hello.yaml renders at the model's
# defaults (128x128, 49 frames at 16 fps) with an AAC track as long as the
# video, through the stages text, cond, denoise, decode; a second render
# skips all 4 and gives the same bytes. (Sampler steps cut to 2: these
# checks are about the pipeline, not the picture.)
#
# The video-only Wan path, on tests/configs/tiny-wan.yaml (a toy Wan2.1 t2v
# model without audio; seeded random weights written here by
# `reel init-weights`): 256x160, 17 frames, no audio stream; a second render
# over the same work directory skips every stage and gives the same bytes;
# a render killed with SIGKILL at 6 points (in text, in denoise twice, in
# decode twice, in the mux) and started again gives output byte-identical to
# the uninterrupted render; side outputs (silent PCM in MOV, PNG sequence,
# contact sheet, silent WAV); a WAV from a model without audio is refused.
# A bad spec exits 2.
cd "$(dirname "$0")/.." || exit 1
. tests/toy_weights.sh
BUILD=${REEL_BUILD:-build}
REEL="$BUILD/reel"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

probe() { # probe FILE ENTRY -> value of the first video stream's ENTRY
    ffprobe -v error -select_streams v:0 -count_frames -show_entries "stream=$2" \
        -of default=noprint_wrappers=1:nokey=1 "$1" 2>/dev/null | head -n 1
}
sval() { # sval FILE STREAM ENTRY
    ffprobe -v error -select_streams "$2" -show_entries "stream=$3" \
        -of default=noprint_wrappers=1:nokey=1 "$1" 2>/dev/null | head -n 1
}
stages() { # stages LOG -> the finished stages in order, "name:skipped" each
    sed -n 's/.*"stage":"\([a-z]*\)","done":true,"skipped":\([a-z]*\).*/\1:\2/p' "$1" | tr '\n' ' '
}

# ---------------------------------------------------------- default model
def="$tmp/def/clip.mp4"
mkdir -p "$tmp/def"
if "$REEL" render examples/hello.yaml -o "$def" --json --set sampler.steps=2 2>"$tmp/dlog"; then
    echo "ok - render hello.yaml with the default model"
else
    tail -5 "$tmp/dlog"
    echo "FAIL - render hello.yaml with the default model: exit $?"
fi
codec=$(probe "$def" codec_name)
pix=$(probe "$def" pix_fmt)
frames=$(probe "$def" nb_read_frames)
rate=$(probe "$def" r_frame_rate)
size="$(probe "$def" width)x$(probe "$def" height)"
prim=$(probe "$def" color_primaries)
[ "$codec" = h264 ] && [ "$pix" = yuv420p ] && [ "$prim" = bt709 ] &&
    echo "ok - default: h264 yuv420p, bt709 tags" ||
    echo "FAIL - default: h264 yuv420p, bt709 tags: got '$codec' '$pix' '$prim'"
[ "$frames" = 49 ] && echo "ok - default: 49 frames (the model's default)" ||
    echo "FAIL - default: 49 frames (the model's default): got '$frames'"
[ "$rate" = 16/1 ] && echo "ok - default: 16 fps" || echo "FAIL - default: 16 fps: got '$rate'"
[ "$size" = 128x128 ] && echo "ok - default: size 128x128" ||
    echo "FAIL - default: size 128x128: got '$size'"
acodec=$(sval "$def" a:0 codec_name)
arate=$(sval "$def" a:0 sample_rate)
adur=$(sval "$def" a:0 duration)
vdur=$(sval "$def" v:0 duration)
[ "$acodec" = aac ] && [ "$arate" = 48000 ] && echo "ok - default: an AAC audio stream at 48 kHz" ||
    echo "FAIL - default: an AAC audio stream at 48 kHz: got '$acodec' '$arate'"
# 49 frames at 16 fps = 3.0625 s; one AAC frame is 1024 samples at 48 kHz
if awk -v a="$adur" -v v="$vdur" 'BEGIN { d = a - v; if (d < 0) d = -d;
    exit !(v > 3.0624 && v < 3.0626 && d <= 1024 / 48000) }'; then
    echo "ok - default: video 3.0625 s, audio as long ($adur s)"
else
    echo "FAIL - default: video 3.0625 s, audio as long: video '$vdur' audio '$adur'"
fi
st=$(stages "$tmp/dlog")
[ "$st" = "text:false cond:false denoise:false decode:false " ] &&
    echo "ok - default: stages text, cond, denoise, decode" ||
    echo "FAIL - default: stages text, cond, denoise, decode: got '$st'"
if grep -q '"seed": 1' "$def.json" && grep -q '"audio_vae": {"path": .*"sha256": "[0-9a-f]\{64\}"' "$def.json"; then
    echo "ok - default: manifest with the seed and the audio VAE's hash"
else
    echo "FAIL - default: manifest with the seed and the audio VAE's hash: $(head -c 300 "$def.json" 2>/dev/null)"
fi
cp "$def" "$tmp/def-first.mp4"
"$REEL" render examples/hello.yaml -o "$def" --json --set sampler.steps=2 2>"$tmp/dlog2"
st=$(stages "$tmp/dlog2")
if [ "$st" = "text:true cond:true denoise:true decode:true " ] && cmp -s "$def" "$tmp/def-first.mp4"; then
    echo "ok - default: second render skips all 4 stages, same bytes"
else
    echo "FAIL - default: second render skips all 4 stages, same bytes: got '$st'"
fi

# ---------------------------------------------- tiny-wan: video-only path
export REEL_TINY_WAN_WEIGHTS="$tmp/w"
toy_weights "init-weights writes the tiny-wan DiT, VAE and text encoder" \
    tests/configs/tiny-wan.yaml "$tmp/w" dit.safetensors vae.safetensors text_encoder.safetensors
job="$tmp/wan.yaml"
cat >"$job" <<EOJ
version: 1
model: $(pwd)/tests/configs/tiny-wan.yaml
prompt: a red circle bounces off the walls on a dark blue background
seed: 1
EOJ

ref="$tmp/ref/clip.mp4"
mkdir -p "$tmp/ref"
if "$REEL" render "$job" -o "$ref" --json 2>"$tmp/log"; then
    echo "ok - render with tiny-wan"
else
    tail -5 "$tmp/log"
    echo "FAIL - render with tiny-wan: exit $?"
fi
codec=$(probe "$ref" codec_name)
pix=$(probe "$ref" pix_fmt)
frames=$(probe "$ref" nb_read_frames)
rate=$(probe "$ref" r_frame_rate)
size="$(probe "$ref" width)x$(probe "$ref" height)"
prim=$(probe "$ref" color_primaries)
[ "$codec" = h264 ] && echo "ok - video codec h264" || echo "FAIL - video codec h264: got '$codec'"
[ "$pix" = yuv420p ] && echo "ok - pixel format yuv420p" || echo "FAIL - pixel format yuv420p: got '$pix'"
[ "$frames" = 17 ] && echo "ok - 17 frames (1 + 4k)" || echo "FAIL - 17 frames (1 + 4k): got '$frames'"
[ "$rate" = 16/1 ] && echo "ok - 16 fps" || echo "FAIL - 16 fps: got '$rate'"
[ "$size" = 256x160 ] && echo "ok - size 256x160" || echo "FAIL - size 256x160: got '$size'"
[ "$prim" = bt709 ] && echo "ok - bt709 tags" || echo "FAIL - bt709 tags: got '$prim'"
dur=$(ffprobe -v error -select_streams v:0 -show_entries stream=duration \
    -of default=noprint_wrappers=1:nokey=1 "$ref")
if awk -v d="$dur" 'BEGIN { exit !(d > 1.0624 && d < 1.0626) }'; then
    echo "ok - video stream duration is frames / fps (1.0625 s)"
else
    echo "FAIL - video stream duration is frames / fps (1.0625 s): got $dur"
fi
na=$(ffprobe -v error -select_streams a -show_entries stream=index -of csv=p=0 "$ref" | wc -l)
[ "$na" = 0 ] && echo "ok - no audio stream for a model without audio" ||
    echo "FAIL - no audio stream for a model without audio: $na streams"
if grep -q '"seed": 1' "$ref.json" && grep -q '"sha256": "[0-9a-f]\{64\}"' "$ref.json" &&
    grep -q '"denoise": {"wall_s"' "$ref.json"; then
    echo "ok - manifest beside the output (seed, weight hashes, stage times)"
else
    echo "FAIL - manifest beside the output: $(head -c 300 "$ref.json" 2>/dev/null)"
fi
leftover=$(find "$tmp/ref" -name '*.tmp-*' | wc -l)
[ "$leftover" = 0 ] && echo "ok - no temporary files left" || echo "FAIL - no temporary files left: $leftover"

# Again over the same work directory: nothing recomputed, same bytes.
cp "$ref" "$tmp/first.mp4"
"$REEL" render "$job" -o "$ref" --json 2>"$tmp/log2"
st=$(stages "$tmp/log2")
if [ "$st" = "text:true denoise:true decode:true " ] && cmp -s "$ref" "$tmp/first.mp4"; then
    echo "ok - second render skips all 3 stages (text, denoise, decode)"
else
    echo "FAIL - second render skips all 3 stages (text, denoise, decode): got '$st'"
fi

# Kill at each point, resume, compare.
for point in text:0 denoise:0 denoise:11 decode:1 decode:4 mux:0; do
    d="$tmp/k-$(echo "$point" | tr : _)"
    mkdir -p "$d"
    REEL_KILL_AT=$point "$REEL" render "$job" -o "$d/clip.mp4" --json 2>"$d/log"
    rc=$?
    if [ "$rc" -ne 137 ] || [ -e "$d/clip.mp4" ]; then
        echo "FAIL - kill at $point: exit $rc (want 137, SIGKILL) or output already there"
        continue
    fi
    if "$REEL" render "$job" -o "$d/clip.mp4" --json 2>"$d/log2" &&
        cmp -s "$d/clip.mp4" "$ref" && [ "$(find "$d" -name '*.tmp-*' | wc -l)" = 0 ]; then
        echo "ok - killed at $point, resumed, byte-identical output"
    else
        tail -3 "$d/log2"
        echo "FAIL - killed at $point, resumed, byte-identical output"
    fi
done

# Side outputs through the render path: a silent PCM track in MOV (tiny-wan
# has no audio branch), a PNG sequence and a contact sheet.
side="$tmp/side"
mkdir -p "$side"
"$REEL" render "$job" -o "$side/clip.mov" --json \
    --set output.audio_codec=pcm --set output.silent_audio=true \
    --set 'output.image_sequence={format: png, start_number: 1001}' \
    --set output.contact_sheet=true --set output.wav=true 2>"$side/log"
rc=$?
acodec=$(sval "$side/clip.mov" a:0 codec_name)
adur=$(sval "$side/clip.mov" a:0 duration)
if [ "$rc" = 0 ] && [ "$acodec" = pcm_s16le ] &&
    awk -v d="$adur" 'BEGIN { exit !(d > 1.0625 - 1024 / 48000 && d < 1.0625 + 1024 / 48000) }'; then
    echo "ok - silent PCM track on request, as long as the video"
else
    tail -3 "$side/log"
    echo "FAIL - silent PCM track on request, as long as the video: rc $rc codec '$acodec' dur '$adur'"
fi
n=$(ls "$side"/clip.[0-9]*.png 2>/dev/null | wc -l)
first=$(ls "$side"/clip.[0-9]*.png 2>/dev/null | head -n 1)
pw=$(ffprobe -v error -show_entries stream=width,height -of csv=p=0 "$first" 2>/dev/null)
if [ "$n" = 17 ] && [ "$(basename "$first")" = clip.1001.png ] && [ "$pw" = "256,160" ]; then
    echo "ok - PNG sequence: 17 frames from 1001, 256x160"
else
    echo "FAIL - PNG sequence: 17 frames from 1001, 256x160: $n files, first $first, size $pw"
fi
sheet=$(ls "$side"/*.png 2>/dev/null | grep -v 'clip\.[0-9]' | head -n 1)
[ -n "$sheet" ] && echo "ok - contact sheet written ($(basename "$sheet"))" ||
    echo "FAIL - contact sheet written: none in $(ls "$side")"
wdur=$(ffprobe -v error -show_entries stream=duration -of default=noprint_wrappers=1:nokey=1 \
    "$side/clip.wav" 2>/dev/null)
[ "$wdur" = 1.062500 ] && echo "ok - silent WAV sidecar as long as the video" ||
    echo "FAIL - silent WAV sidecar as long as the video: '$wdur'"

# A WAV from a model without audio, without asking for silence, is refused.
"$REEL" render "$job" -o "$tmp/nowav.mp4" --set output.wav=true 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && grep -q 'output.wav: tiny-wan makes no audio' "$tmp/err" && [ ! -e "$tmp/nowav.mp4" ]; then
    echo "ok - WAV without audio is a spec error"
else
    echo "FAIL - WAV without audio is a spec error: exit $rc $(cat "$tmp/err")"
fi

# A spec error is exit status 2 and names file:line:col.
printf 'version: 1\nprompt: x\nfps: fast\n' >"$tmp/bad.yaml"
"$REEL" render "$tmp/bad.yaml" 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && grep -q 'bad.yaml:3:6: fps' "$tmp/err"; then
    echo "ok - bad spec exits 2 with file:line:col: key"
else
    cat "$tmp/err"
    echo "FAIL - bad spec exits 2 with file:line:col: key: exit $rc"
fi
