#!/usr/bin/python3
"""test_synth.py - self-checks of the synthetic dataset (tests/t_synth.sh).

Prints "ok - NAME" / "FAIL - NAME: why" per check, like every test here:
determinism (byte-identical shards, independent of shard size and worker
count), captions parse back, the held-out split, colours, rendered centroid
and bbox against ground truth, impact geometry, audio onsets against the
analytic impact times, silence, pitch and loudness, the shard round trip,
and the ffmpeg preview (speed is not a test: it varies with the machine).
"""
import filecmp
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import audio  # noqa: E402
import captions as cap  # noqa: E402
import make_dataset as md  # noqa: E402
import scenes  # noqa: E402

RESULTS = []
TMP = tempfile.mkdtemp(prefix="t_synth.")
SIZE, FPS, SECONDS = 128, 16, 3.0


def check(name):
    def wrap(fn):
        try:
            why = fn()
        except Exception as e:  # report, never crash the run
            why = "exception %s: %s\n%s" % (type(e).__name__, e, traceback.format_exc(limit=3))
        if why:
            print("FAIL - %s: %s" % (name, why))
        else:
            print("ok - %s" % name)
        RESULTS.append(not why)
        sys.stdout.flush()
        return fn
    return wrap


# A fixed, varied set of clips: every shape with every motion, plus a few
# drawn the normal way from each split.
CLIPS = []
for si, shape in enumerate(cap.SHAPES):
    for mi, motion in enumerate(cap.MOTIONS):
        colour = cap.VALUES["colour"][(si + mi) % len(cap.COLOURS)]
        bg = cap.VALUES["background"][(si * 2 + mi) % len(cap.BACKGROUNDS)]
        for rep in range(3):      # three apiece: >= 50 wall impacts with three shapes
            CLIPS.append(md.generate_clip(7, "train", 1000 + 10 * (si * 5 + mi) + rep,
                                          SIZE, FPS, SECONDS, combo=(colour, shape, bg, motion)))
CLIPS += [md.generate_clip(3, split, i, SIZE, FPS, SECONDS)
          for split in ("train", "heldout") for i in range(10)]


def alpha_of(clip):
    """Per-pixel object coverage recovered from the rendered frames."""
    v = clip["video"].astype(np.float64)
    bg = clip["background_rgb"].astype(np.float64)
    d = clip["colour_rgb"].astype(np.float64) - bg
    return np.clip(((v - bg) * d).sum(-1) / (d * d).sum(), 0, 1)


@check("determinism: same seed, byte-identical shards and index")
def _():
    a, b, c = (os.path.join(TMP, x) for x in "abc")
    md.make_dataset(a, 6, seed=11, split="train", size=64, fps=16, seconds=2.0, shard_size=4)
    md.make_dataset(b, 6, seed=11, split="train", size=64, fps=16, seconds=2.0, shard_size=4,
                    workers=2)
    md.make_dataset(c, 6, seed=12, split="train", size=64, fps=16, seconds=2.0, shard_size=4)
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)) or len(names) != 3:
        return "file lists differ or wrong count: %s vs %s" % (names, sorted(os.listdir(b)))
    for n in names:
        if not filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False):
            return "%s differs between two runs (1 and 2 workers)" % n
    if filecmp.cmp(os.path.join(a, names[0]), os.path.join(c, names[0].replace("s11", "s12")),
                   shallow=False):
        return "seed 12 wrote the same shard as seed 11"
    return None


@check("determinism: a clip depends only on (seed, split, index)")
def _():
    d = md.load_shard(os.path.join(TMP, "a", md.shard_name("train", 11, 1)))
    c = md.generate_clip(11, "train", 5, 64, 16, 2.0)
    i = list(d["clip_index"]).index(5)
    if not (np.array_equal(d["video"][i], c["video"]) and np.array_equal(d["audio"][i], c["audio"])
            and str(d["caption"][i]) == c["caption"]):
        return "clip 5 in shard 1 differs from generate_clip(11, train, 5)"
    return None


@check("shard round trip: fields, shapes, dtypes, meta")
def _():
    d = md.load_shard(os.path.join(TMP, "a", md.shard_name("train", 11, 0)))
    T, S = 32, 32000
    want = {"video": ((4, T, 64, 64, 3), np.uint8), "audio": ((4, S), np.float32),
            "centre": ((4, T, 2), np.float32), "bbox": ((4, T, 4), np.float32),
            "velocity": ((4, T, 2), np.float32), "attrs": ((4, 4), np.int16),
            "impact_count": ((4,), np.int32)}
    for k, (shape, dt) in want.items():
        if d[k].shape != shape or d[k].dtype != dt:
            return "%s: %s %s, want %s %s" % (k, d[k].shape, d[k].dtype, shape, np.dtype(dt))
    m = d["meta"]
    if (m["size"], m["fps"], m["sr"], m["frames"], m["samples"]) != (64, 16, 16000, T, S):
        return "meta %s" % m
    for c in md.shard_clips(d):
        if cap.parse(c["caption"]) != c["attributes"]:
            return "stored attributes disagree with the caption %r" % c["caption"]
        if len(c["impact_times"]) != len(c["impact_frames"]):
            return "impact arrays differ in length"
    idx = json.load(open(os.path.join(TMP, "a", "index.json")))
    if sum(s["clips"] for s in idx["shards"]) != 6:
        return "index.json counts %s" % idx["shards"]
    return None


@check("captions: every combination and variant parses back")
def _():
    n = 0
    for combo in cap.all_combos():
        want = dict(zip(cap.ATTRS, combo))
        for t in range(len(cap.TEMPLATES)):
            for p in range(len(cap.MOTION_PHRASES[combo[3]])):
                text = cap.caption(*combo, template=t, phrase=p)
                if cap.parse(text) != want:
                    return "%r parsed to %s" % (text, cap.parse(text))
                n += 1
    for bad in ("a orange circle stays still on a black background",
                "a red circle stays still on an black background",
                "a red hexagon stays still on a black background",
                "a red circle stays still"):
        try:
            cap.parse(bad)
            return "accepted %r" % bad
        except ValueError:
            pass
    for c in CLIPS:
        if cap.parse(c["caption"]) != c["attributes"] or \
                cap.parse(c["caption_canonical"]) != c["attributes"]:
            return "clip caption %r does not parse to %s" % (c["caption"], c["attributes"])
    return None


@check("held-out split: disjoint, ~15%, every value and pair seen in training")
def _():
    probs = cap.check_split()
    if probs:
        return "; ".join(probs[:5])
    tr, he = cap.split_combos("train"), cap.split_combos("heldout")
    frac = len(he) / (len(tr) + len(he))
    if not 0.10 <= frac <= 0.20:
        return "held-out fraction %.3f" % frac
    held = set(he)
    for split in ("train", "heldout"):
        for i in range(150):
            rng = md.clip_rng(5, split, i)  # the combination draw comes first
            c = md._COMBOS.setdefault(split, cap.split_combos(split))[int(rng.integers(len(
                md._COMBOS[split])))]
            if (c in held) != (split == "heldout"):
                return "%s clip %d has combination %s" % (split, i, c)
    for k, c in enumerate(CLIPS[-20:]):
        combo = tuple(c["attributes"][a] for a in cap.ATTRS)
        split = "heldout" if k >= 10 else "train"
        if (combo in held) != (split == "heldout"):
            return "%s clip has combination %s" % (split, combo)
    return None


@check("colours: far apart, far from backgrounds, rendered exactly")
def _():
    cols = {k: np.array(v, float) for k, v in cap.COLOURS.items()}
    bgs = {k: np.array(v, float) for k, v in cap.BACKGROUNDS.items()}
    if len(cols) < 6 or len(bgs) < 4 or len(cap.SHAPES) < 3:
        return "too few colours/backgrounds/shapes"
    for a in cols:
        for b in cols:
            if a < b and np.linalg.norm(cols[a] - cols[b]) < 80:
                return "%s and %s are %.0f apart" % (a, b, np.linalg.norm(cols[a] - cols[b]))
        for b in bgs:
            if np.linalg.norm(cols[a] - bgs[b]) < 100:
                return "%s on %s: only %.0f apart" % (a, b, np.linalg.norm(cols[a] - bgs[b]))
    for c in CLIPS:
        x, y = np.floor(c["centre"][0]).astype(int)
        if not np.array_equal(c["video"][0, y, x], c["colour_rgb"]):
            return "centre pixel %s, want %s" % (c["video"][0, y, x], c["colour_rgb"])
        if not np.array_equal(c["video"][0, 0, 0], c["background_rgb"]) and \
                not np.array_equal(c["video"][0, -1, -1], c["background_rgb"]):
            return "corner pixels are not the background"
    return None


@check("render: object centroid within 1 px of ground truth, bbox tight, inside frame")
def _():
    worst, worst_box = 0.0, 0.0
    for c in CLIPS:
        a = alpha_of(c)
        T, H, W = a.shape
        m = a.sum((1, 2))
        cx = (a * (np.arange(W) + 0.5)[None, None, :]).sum((1, 2)) / m
        cy = (a * (np.arange(H) + 0.5)[None, :, None]).sum((1, 2)) / m
        err = np.hypot(cx - c["centre"][:, 0], cy - c["centre"][:, 1]).max()
        worst = max(worst, err)
        if err > 1.0:
            return "%s: centroid %.2f px off" % (c["caption"], err)
        # area: coverage sum against the exact shape area
        b = c["bbox"]
        if b.min() < -1e-3 or b.max() > SIZE + 1e-3:
            return "%s: bbox leaves the frame" % c["caption"]
        on = a > 0.02
        for t in (0, T // 2, T - 1):
            ys, xs = np.nonzero(on[t])
            box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float)
            e = np.abs(box - b[t]).max()
            worst_box = max(worst_box, e)
            if e > 1.5:
                return "%s frame %d: rendered box %s vs %s" % (c["caption"], t, box, b[t])
    print("# worst centroid error %.3f px, bbox %.2f px" % (worst, worst_box))
    return None


@check("motion: impacts touch the wall, velocity reverses, frames = round(t*fps)")
def _():
    n = 0
    for c in CLIPS:
        mot, sc = c["motion"], c["scene"]
        x, y = mot.pos(c["impact_times"])
        for k, (t, w) in enumerate(zip(c["impact_times"], c["impact_walls"])):
            vel = mot.vel(np.array([t - 1e-6, t + 1e-6]))  # (vx, vy) before, after
            for wall in w.split("+"):
                axis = 0 if wall in ("left", "right") else 1
                pos = (x, y)[axis][k]
                lim = sc["lo"][axis] if wall in ("left", "top") else sc["hi"][axis]
                if abs(pos - lim) > 1e-6:
                    return "%s: impact at %.4f s is %.2g from the %s wall" % (
                        c["caption"], t, abs(pos - lim), wall)
                v0, v1 = vel[axis]
                if not v0 * v1 < 0 and not (wall == "floor" and v1 == 0):
                    return "%s: velocity does not reverse at %.4f s" % (c["caption"], t)
                n += 1
        if not np.array_equal(c["impact_frames"], np.rint(c["impact_times"] * FPS)):
            return "impact frames"
        m = c["attributes"]["motion"]
        if (m in ("slide_right", "slide_left", "still")) != (len(c["impact_times"]) == 0):
            return "%s has %d impacts" % (c["caption"], len(c["impact_times"]))
        dx = c["centre"][-1, 0] - c["centre"][0, 0]
        if (m == "slide_right" and dx < SIZE * 0.3) or (m == "slide_left" and dx > -SIZE * 0.3):
            return "%s moves %.1f px" % (c["caption"], dx)
        if m == "fall" and c["impact_walls"][:1] != ["floor"]:
            return "%s: no floor impact" % c["caption"]
    if n < 50:
        return "only %d impacts checked" % n
    return None


@check("audio: onsets within 1 ms of the analytic impact times")
def _():
    n, worst = 0, 0.0
    gap = audio.TONE_S + 0.02
    for c in CLIPS:
        det = audio.onsets(c["audio"])
        gt = c["impact_times"]
        for t in det:  # every onset is an impact
            if gt.size == 0 or np.abs(gt - t).min() > 1e-3:
                return "%s: onset at %.4f s matches no impact (%s)" % (c["caption"], t, gt)
        for k, t in enumerate(gt):  # every isolated impact is detected
            if k and t - gt[k - 1] < gap:
                continue
            e = np.abs(det - t).min() if det.size else math.inf
            if e > 1e-3:
                return "%s: impact at %.4f s, nearest onset %.4f s off" % (c["caption"], t, e)
            worst, n = max(worst, e), n + 1
    if n < 40:
        return "only %d isolated impacts" % n
    print("# %d isolated impacts, worst onset error %.3f ms" % (n, worst * 1e3))
    return None


@check("audio: exact silence outside the impact tones; silent clips are silent")
def _():
    for c in CLIPS:
        a = c["audio"]
        if a.dtype != np.float32 or a.size != int(SECONDS * audio.SR) or np.abs(a).max() > 1:
            return "format: %s %d max %.3f" % (a.dtype, a.size, np.abs(a).max())
        active = np.zeros(a.size, bool)
        tt = np.arange(a.size) / audio.SR
        for t in c["impact_times"]:
            active |= (tt >= t) & (tt < t + audio.TONE_S)
        if np.any(a[~active] != 0):
            return "%s: sound outside the impact windows" % c["caption"]
        if c["impact_times"].size and not np.all(
                [np.abs(a[(tt >= t) & (tt < t + 0.02)]).max() > 0.01 for t in c["impact_times"]]):
            return "%s: an impact with no sound" % c["caption"]
    return None


@check("audio: pitch by shape, loudness by impact speed")
def _():
    for c in CLIPS:
        gt, sp = c["impact_times"], c["impact_speeds"]
        f0 = cap.PITCH[c["attributes"]["shape"]]
        for k, t in enumerate(gt):
            if (k and t - gt[k - 1] < audio.TONE_S) or (k + 1 < gt.size and gt[k + 1] - t < audio.TONE_S):
                continue
            i0 = int(math.ceil(t * audio.SR))
            seg = c["audio"][i0:i0 + int(audio.TONE_S * audio.SR)]
            if seg.size < 1000:
                continue
            spec = np.abs(np.fft.rfft(seg * np.hanning(seg.size), 16 * audio.SR))
            f = np.argmax(spec) / 16
            if abs(f - f0) > 8:
                return "%s: tone at %.1f Hz, want %.0f" % (c["caption"], f, f0)
            want = audio.loudness(sp[k] / SIZE)
            # amplitude: least-squares fit of the noiseless tone
            tmpl = audio.tone(f0, 1.0, (i0 + np.arange(seg.size)) / audio.SR - t,
                              np.zeros(seg.size))
            got = float(seg @ tmpl / (tmpl @ tmpl))
            if not 0.9 * want < got < 1.1 * want:
                return "%s: peak %.3f for speed %.2f, want about %.3f" % (
                    c["caption"], got, sp[k], want)
    # louder for faster: the falls' impacts get slower and quieter
    for c in CLIPS:
        if c["attributes"]["motion"] == "fall" and c["impact_times"].size >= 3:
            if not np.all(np.diff(c["impact_speeds"]) < 0):
                return "fall impacts do not slow down"
    return None


@check("preview: MP4 with video and audio, contact sheet PNG")
def _():
    if not shutil.which("ffmpeg") or not shutil.which("ffprobe"):
        return "ffmpeg/ffprobe not installed"
    out = os.path.join(TMP, "prev")
    md.main(["--preview", out, "--n", "2", "--preview-n", "2", "--seed", "4"])
    p = os.path.join(out, "clip_000.mp4")
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "stream=codec_type",
                        "-show_entries", "format=duration", "-of", "json", p],
                       capture_output=True, text=True)
    j = json.loads(r.stdout or "{}")
    types = sorted(s["codec_type"] for s in j.get("streams", []))
    if types != ["audio", "video"]:
        return "streams %s" % types
    if abs(float(j["format"]["duration"]) - 3.0) > 0.15:
        return "duration %s" % j["format"]["duration"]
    with open(os.path.join(out, "contact_sheet.png"), "rb") as f:
        if f.read(8) != b"\x89PNG\r\n\x1a\n":
            return "contact sheet is not a PNG"
    return None


shutil.rmtree(TMP, ignore_errors=True)
sys.exit(0 if all(RESULTS) else 1)
