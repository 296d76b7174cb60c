#!/bin/sh
# End to end: `reel render` with the default model, read back with ffprobe;
# a second render over the same work directory skips every stage and gives
# the same bytes; a render killed with SIGKILL at 6 points (in text, in
# denoise twice, in decode twice, in the mux) and started again gives output
# byte-identical to the uninterrupted render; a bad spec exits 2.
cd "$(dirname "$0")/.." || exit 1
BUILD=${REEL_BUILD:-build}
REEL="$BUILD/reel"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

probe() { # probe FILE ENTRY -> value of the first video stream's ENTRY
    ffprobe -v error -select_streams v:0 -count_frames -show_entries "stream=$2" \
        -of default=noprint_wrappers=1:nokey=1 "$1" 2>/dev/null | head -n 1
}

ref="$tmp/ref/clip.mp4"
mkdir -p "$tmp/ref"
if "$REEL" render examples/hello.yaml -o "$ref" --json 2>"$tmp/log"; then
    echo "ok - render hello.yaml"
else
    cat "$tmp/log"
    echo "FAIL - render hello.yaml: exit $?"
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
"$REEL" render examples/hello.yaml -o "$ref" --json 2>"$tmp/log2"
skipped=$(grep -c '"skipped":true' "$tmp/log2")
if [ "$skipped" = 3 ] && cmp -s "$ref" "$tmp/first.mp4"; then
    echo "ok - second render skips all 3 stages"
else
    echo "FAIL - second render skips all 3 stages: $skipped skipped"
fi

# Kill at each point, resume, compare.
for point in text:0 denoise:0 denoise:11 decode:1 decode:4 mux:0; do
    d="$tmp/k-$(echo "$point" | tr : _)"
    mkdir -p "$d"
    REEL_KILL_AT=$point "$REEL" render examples/hello.yaml -o "$d/clip.mp4" --json 2>"$d/log"
    rc=$?
    if [ "$rc" -ne 137 ] || [ -e "$d/clip.mp4" ]; then
        echo "FAIL - kill at $point: exit $rc (want 137, SIGKILL) or output already there"
        continue
    fi
    if "$REEL" render examples/hello.yaml -o "$d/clip.mp4" --json 2>"$d/log2" &&
        cmp -s "$d/clip.mp4" "$ref" && [ "$(find "$d" -name '*.tmp-*' | wc -l)" = 0 ]; then
        echo "ok - killed at $point, resumed, byte-identical output"
    else
        tail -3 "$d/log2"
        echo "FAIL - killed at $point, resumed, byte-identical output"
    fi
done

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

# Side outputs through the render path: a silent PCM track in MOV (the
# default model has no audio branch), a PNG sequence and a contact sheet.
side="$tmp/side"
mkdir -p "$side"
"$REEL" render examples/hello.yaml -o "$side/clip.mov" --json \
    --set output.audio_codec=pcm --set output.silent_audio=true \
    --set 'output.image_sequence={format: png, start_number: 1001}' \
    --set output.contact_sheet=true --set output.wav=true 2>"$side/log"
rc=$?
acodec=$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name \
    -of default=noprint_wrappers=1:nokey=1 "$side/clip.mov" 2>/dev/null)
adur=$(ffprobe -v error -select_streams a:0 -show_entries stream=duration \
    -of default=noprint_wrappers=1:nokey=1 "$side/clip.mov" 2>/dev/null)
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
"$REEL" render examples/hello.yaml -o "$tmp/nowav.mp4" --set output.wav=true 2>"$tmp/err"
rc=$?
if [ "$rc" = 2 ] && grep -q 'output.wav: reel-default makes no audio' "$tmp/err" && [ ! -e "$tmp/nowav.mp4" ]; then
    echo "ok - WAV without audio is a spec error"
else
    echo "FAIL - WAV without audio is a spec error: exit $rc $(cat "$tmp/err")"
fi
