#!/bin/sh
# Frame conditioning (image / last_image / keyframes) with a joint audio
# model that has dit.frame_cond (tests/configs/tiny-ovi-cond.yaml, seeded
# random weights written here by `reel init-weights`; images made with
# ffmpeg's lavfi). Renders succeed and ffprobe reads them; cond.safetensors
# holds exactly the expected 0/1 mask and the VAE encodings the stage must
# make (checked by build/tests/test_cond against the encoder run here);
# every error case gives its exit status and names the key or the file; a
# changed image changes the job key; killed renders resume byte-identical.
cd "$(dirname "$0")/.." || exit 1
. tests/toy_weights.sh
BUILD=${REEL_BUILD:-build}
REEL="$BUILD/reel"
CHECK="$BUILD/tests/test_cond"
CFG=$(pwd)/tests/configs/tiny-ovi-cond.yaml
tmp=$(mktemp -d)
[ -n "$KEEP" ] || trap 'rm -rf "$tmp"' EXIT

export REEL_TINY_OVI_COND_WEIGHTS="$tmp/w"
mkdir -p "$tmp/img"
toy_weights "init-weights writes the frame_cond model's weights" "$CFG" "$tmp/w" fusion.safetensors

# Inputs of other sizes than the clip's 64x64: scaled to cover, centre-cropped.
ffmpeg -v error -f lavfi -i color=red:s=64x64 -frames:v 1 "$tmp/img/red.png"
ffmpeg -v error -f lavfi -i testsrc=s=96x48 -frames:v 1 "$tmp/img/wide.png"
ffmpeg -v error -f lavfi -i color=0x2060c0:s=40x80 -frames:v 1 "$tmp/img/tall.jpg"
echo "not an image" >"$tmp/img/bad.png"

# job NAME EXTRA-YAML: a spec in $tmp (image paths relative to it)
job() {
    {
        echo "version: 1"
        echo "model: $CFG"
        echo "seed: 11"
        echo "prompt: A red ball rolls across a table."
        echo "sampler: {steps: 2}"
        printf '%s\n' "$2"
    } >"$tmp/$1.yaml"
}

sval() { # sval FILE ENTRY
    ffprobe -v error -select_streams v:0 -show_entries "stream=$2" \
        -of default=noprint_wrappers=1:nokey=1 "$1" 2>/dev/null | head -n 1
}

# render NAME: renders $tmp/NAME.yaml to $tmp/NAME/clip.mp4; the cond file
# is then $tmp/NAME/.clip.mp4.reel/cond.safetensors
render() {
    "$REEL" render "$tmp/$1.yaml" -o "$tmp/$1/clip.mp4" --json 2>"$tmp/$1.log"
}

case_ok() { # case_ok NAME FRAMES WHAT(image path | zeros) LABEL
    if render "$1" && [ "$(sval "$tmp/$1/clip.mp4" nb_frames)" = 17 ] &&
        [ "$(sval "$tmp/$1/clip.mp4" width)x$(sval "$tmp/$1/clip.mp4" height)" = 64x64 ]; then
        echo "ok - render with $4; ffprobe reads 17 64x64 frames"
    else
        tail -3 "$tmp/$1.log"
        echo "FAIL - render with $4; ffprobe reads 17 64x64 frames"
        return
    fi
    "$CHECK" check "$tmp/$1/.clip.mp4.reel/cond.safetensors" "$2" "$CFG" $3 |
        sed "s/^\(ok\|FAIL\) - /\1 - $4: /"
}

job image "image: img/red.png"
case_ok image 0 "$tmp/img/red.png" "image (frame 0)"
job last "last_image: img/wide.png"
case_ok last 16 "" "last_image (frame 16)"
job flf "image: img/wide.png
last_image: img/tall.jpg"
case_ok flf 0,16 "$tmp/img/wide.png" "image + last_image"
job keys "keyframes:
  - {frame: 0, image: img/tall.jpg}
  - {frame: 5, image: img/red.png}
  - {frame: -9, image: img/wide.png}
  - {frame: -1, image: img/red.png}"
case_ok keys 0,5,8,16 "$tmp/img/tall.jpg" "keyframes 0, 5, -9, -1"
job none ""
case_ok none "" zeros "no images (text to video)"

if grep -q '"cond": {"wall_s"' "$tmp/keys/clip.mp4.json" &&
    grep -q '{"frame": 5, "image": "[^"]*/img/red.png", "sha256": "[0-9a-f]\{64\}"}' \
        "$tmp/keys/clip.mp4.json" &&
    grep -q 'keyframes:.*frame: 16.*sha256' "$tmp/keys/clip.mp4.json"; then
    echo "ok - the manifest lists the cond stage and each keyframe with its sha256"
else
    echo "FAIL - the manifest lists the cond stage and each keyframe with its sha256"
fi
if ! cmp -s "$tmp/image/clip.mp4" "$tmp/none/clip.mp4" &&
    ! cmp -s "$tmp/image/clip.mp4" "$tmp/last/clip.mp4"; then
    echo "ok - the conditioning changes the clip"
else
    echo "FAIL - the conditioning changes the clip"
fi
# A second render of the same job skips every stage, cond included.
if render keys && grep -q '"stage":"cond","done":true,"skipped":true' "$tmp/keys.log"; then
    echo "ok - a rerun skips the cond stage"
else
    echo "FAIL - a rerun skips the cond stage"
fi

# ---- errors
err_case() { # err_case NAME WANT_RC PATTERN LABEL
    render "$1"
    rc=$?
    if [ "$rc" = "$2" ] && grep -q -- "$3" "$tmp/$1.log"; then
        echo "ok - $4: exit $2"
    else
        cat "$tmp/$1.log"
        echo "FAIL - $4: exit $rc (want $2), message matching '$3'"
    fi
}
job e_range "keyframes:
  - {frame: 17, image: img/red.png}"
err_case e_range 2 "e_range.yaml:7:13: keyframes\[0\].frame: frame 17 is outside the clip's 17 frames" \
    "keyframe past the end"
job e_neg "keyframes: [{frame: -18, image: img/red.png}]"
err_case e_neg 2 "e_neg.yaml:6:21: keyframes\[0\].frame: frame -18 is outside" "keyframe before the start"
job e_dup "image: img/red.png
keyframes:
  - {frame: 4, image: img/red.png}
  - {frame: -17, image: img/wide.png}"
err_case e_dup 2 "e_dup.yaml:9:13: keyframes\[1\].frame: frame 0 already has an image (image)" \
    "two images on one frame"
job e_missing "last_image: img/nope.png"
err_case e_missing 4 "e_missing.yaml:6:13: last_image: .*img/nope.png: cannot open" \
    "a missing image names the file"
job e_bad "keyframes: [{frame: 3, image: img/bad.png}]"
err_case e_bad 4 "e_bad.yaml:6:31: keyframes\[0\].image: .*img/bad.png: " "an undecodable image names the file"
job e_shape "keyframes: [{frame: 3}, {frame: x, image: img/red.png}, {image: a.png, at: 2}]"
err_case e_shape 2 "keyframes\[1\].frame: must be an integer" "a malformed keyframe list"
cat >"$tmp/e_model.yaml" <<EOF
version: 1
model: $(pwd)/tests/configs/tiny-ovi.yaml
prompt: x
keyframes:
  - {frame: 0, image: img/red.png}
EOF
err_case e_model 2 "e_model.yaml:5:3: keyframes: tiny-ovi has no frame conditioning" \
    "keyframes on a model without frame_cond"
for f in e_range e_dup e_missing e_bad e_model; do
    if [ -e "$tmp/$f/clip.mp4" ] || [ -e "$tmp/$f/.clip.mp4.reel/job.key" ]; then
        echo "FAIL - a refused spec ($f) starts no job"
    fi
done
# cfg_err NAME PATTERN LABEL: model config $tmp/NAME.yaml is refused with
# exit 3 and a message matching NAME.yaml:LINE:COL: PATTERN
cfg_err() {
    "$REEL" validate --set "model=$tmp/$1.yaml" "$tmp/none.yaml" >"$tmp/v.out" 2>&1
    rc=$?
    if [ "$rc" = 3 ] && grep -q "$1.yaml:[0-9]*:[0-9]*: $2" "$tmp/v.out"; then
        echo "ok - $3: a model config error naming the key (exit 3)"
    else
        cat "$tmp/v.out"
        echo "FAIL - $3: a model config error naming the key (exit $rc)"
    fi
}
# A model config with frame_cond but the wrong in_dim is refused, naming the key.
sed 's/^  in_dim: 12$/  in_dim: 4/' "$CFG" >"$tmp/bad-cond.yaml"
cfg_err bad-cond 'dit.in_dim: must be 2 \* out_dim + 4 = 12' "frame_cond with in_dim != 2 * out_dim + 4"

# ---- dit.pin_first_latent: with frame 0 given the first latent frame ends
# on the condition latent exactly; without it (or without an image at frame
# 0) it is generated like the rest.
"$CHECK" pin "$tmp/image/.clip.mp4.reel/cond.safetensors" \
    "$tmp/image/.clip.mp4.reel/denoise.safetensors" free | sed 's/^\(ok\|FAIL\) - /\1 - image, no pin: /'
sed 's/^  frame_cond: true$/  frame_cond: true\n  pin_first_latent: true/' "$CFG" >"$tmp/pin-cond.yaml"
for p in "pin_image:image: img/red.png:pinned" "pin_last:last_image: img/wide.png:free"; do
    name=${p%%:*}
    rest=${p#*:}
    spec=${rest%:*}
    want=${rest##*:}
    job "$name" "$spec"
    sed -i "s|^model: .*|model: $tmp/pin-cond.yaml|" "$tmp/$name.yaml"
    if render "$name"; then
        "$CHECK" pin "$tmp/$name/.clip.mp4.reel/cond.safetensors" \
            "$tmp/$name/.clip.mp4.reel/denoise.safetensors" "$want" |
            sed "s#^\(ok\|FAIL\) - #\1 - pin_first_latent, $spec: #"
    else
        tail -3 "$tmp/$name.log"
        echo "FAIL - pin_first_latent, $spec: renders"
    fi
done
sed 's/^  frame_cond: true$/  pin_first_latent: true/' "$CFG" | sed 's/^  in_dim: 12$/  in_dim: 4/' \
    >"$tmp/bad-pin.yaml"
cfg_err bad-pin 'dit.pin_first_latent: needs dit.frame_cond' "pin_first_latent without frame_cond"

# ---- a changed image is another job
"$REEL" validate --print "$tmp/image.yaml" >"$tmp/k1" 2>&1
cp "$tmp/img/red.png" "$tmp/img/red.orig.png"
ffmpeg -v error -y -f lavfi -i color=green:s=64x64 -frames:v 1 "$tmp/img/red.png"
"$REEL" validate --print "$tmp/image.yaml" >"$tmp/k2" 2>&1
h1=$(sed -n 's/.*sha256: "\([0-9a-f]*\)"/\1/p' "$tmp/k1")
h2=$(sed -n 's/.*sha256: "\([0-9a-f]*\)"/\1/p' "$tmp/k2")
if [ -n "$h1" ] && [ -n "$h2" ] && [ "$h1" != "$h2" ] && ! cmp -s "$tmp/k1" "$tmp/k2"; then
    echo "ok - a changed image changes the canonical spec (the job key)"
else
    echo "FAIL - a changed image changes the canonical spec (the job key): '$h1' '$h2'"
fi
# over the old work directory: refused, never the stale cond
render image
rc=$?
if [ "$rc" = 2 ] && grep -q 'holds another job' "$tmp/image.log"; then
    echo "ok - a changed image does not reuse the old work directory"
else
    tail -3 "$tmp/image.log"
    echo "FAIL - a changed image does not reuse the old work directory (exit $rc)"
fi
if "$REEL" render "$tmp/image.yaml" -o "$tmp/image2/clip.mp4" --json 2>"$tmp/image2.log" &&
    grep -q '"stage":"cond","done":true,"skipped":false' "$tmp/image2.log" &&
    ! cmp -s "$tmp/image2/.clip.mp4.reel/cond.safetensors" \
        "$tmp/image/.clip.mp4.reel/cond.safetensors" &&
    ! cmp -s "$tmp/image2/clip.mp4" "$tmp/image/clip.mp4"; then
    echo "ok - with the changed image the stages run again and the clip changes"
else
    tail -3 "$tmp/image2.log"
    echo "FAIL - with the changed image the stages run again and the clip changes"
fi
"$CHECK" check "$tmp/image2/.clip.mp4.reel/cond.safetensors" 0 "$CFG" "$tmp/img/red.png" |
    sed "s/^\(ok\|FAIL\) - /\1 - changed image: /"
cp "$tmp/img/red.orig.png" "$tmp/img/red.png"

# ---- kill and resume: byte-identical
for point in cond:0 denoise:1; do
    d="$tmp/k-$(echo "$point" | tr : _)"
    mkdir -p "$d"
    REEL_KILL_AT=$point "$REEL" render "$tmp/keys.yaml" -o "$d/clip.mp4" --json 2>"$d/log"
    rc=$?
    if [ "$rc" -ne 137 ] || [ -e "$d/clip.mp4" ]; then
        echo "FAIL - kill at $point: exit $rc (want 137, SIGKILL) or output already there"
        continue
    fi
    if ! "$REEL" render "$tmp/keys.yaml" -o "$d/clip.mp4" --json 2>"$d/log2"; then
        tail -3 "$d/log2"
        echo "FAIL - keyframes: killed at $point, resumed"
        continue
    fi
    w="$d/.clip.mp4.reel"
    if cmp -s "$w/cond.safetensors" "$tmp/keys/.clip.mp4.reel/cond.safetensors" &&
        cmp -s "$w/denoise.safetensors" "$tmp/keys/.clip.mp4.reel/denoise.safetensors" &&
        [ "$(find "$d" -name '*.tmp-*' | wc -l)" = 0 ]; then
        echo "ok - keyframes: killed at $point, resumed: cond and denoise artifacts byte-identical"
    else
        echo "FAIL - keyframes: killed at $point, resumed: cond and denoise artifacts byte-identical"
    fi
    if cmp -s "$d/clip.mp4" "$tmp/keys/clip.mp4"; then
        echo "ok - keyframes: killed at $point, resumed, byte-identical output"
    else
        echo "FAIL - keyframes: killed at $point, resumed, byte-identical output"
    fi
done
