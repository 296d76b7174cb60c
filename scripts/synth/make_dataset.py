#!/usr/bin/python3
"""make_dataset.py - write the synthetic audio-video dataset as .npz shards.

    make_dataset.py --out DIR --n N [--seed S] [--split train|heldout]
                    [--size 128] [--fps 16] [--seconds 3] [--shard-size 32]
                    [--workers 1] [--preview DIR [--preview-n 4]]

Clip i of (seed, split) depends only on (seed, split, i) - not on --n, the
shard size or the worker count - and every file written is byte-identical
for the same arguments. train clips draw their (colour, shape, background,
motion) uniformly from the training combinations, heldout clips from the
held-out ones (captions.py).

DIR/index.json lists the shards; DIR/<split>-s<seed>-NNNNN.npz holds up to
--shard-size clips (a zip of .npy arrays, deflate level 1; np.load reads
it, load_shard() returns a dict). Arrays, N clips, T frames, K = the most
impacts of any clip in the shard (padding: NaN / -1 / ""):

  video            uint8   [N,T,H,W,3]
  audio            float32 [N,samples]     16 kHz mono, in [-1, 1]
  caption          str     [N]             the clip's caption (a variant)
  caption_canonical str    [N]             template 0, phrase 0
  attrs            int16   [N,4]           indices into meta.values[colour|shape|background|motion]
  colour_rgb, background_rgb uint8 [N,3]
  centre           float32 [N,T,2]         object area centroid, pixels (x, y)
  bbox             float32 [N,T,4]         x0, y0, x1, y1, pixels
  velocity         float32 [N,T,2]         pixels / s
  radius           float32 [N]             shape size parameter, pixels
  impact_count     int32   [N]
  impact_times     float64 [N,K]           seconds, exact (analytic)
  impact_frames    int32   [N,K]           nearest frame, round(t * fps)
  impact_speeds    float32 [N,K]           pixels / s (normal to the wall)
  impact_walls     str     [N,K]           left|right|top|bottom|floor (a+b: corner)
  clip_index       int64   [N]
  meta             str     []              JSON: size, fps, seconds, sr, split,
                                           seed, attribute values, pitches

Frame k shows time k / fps; audio sample n is time n / sr.
--preview DIR writes the first --preview-n clips as MP4 (ffmpeg, 4x
nearest upscale, with sound), their captions, and a contact sheet PNG
(rows: clips; 8 frames each, and the waveform with ground-truth impacts
marked in red beneath).
"""
import argparse
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import wave
import zipfile
import zlib

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import audio as audio_mod  # noqa: E402
import captions  # noqa: E402
import scenes  # noqa: E402

VERSION = 4   # 4: three shapes, objects 0.17-0.20, motions from near the centre at a few speeds/headings; 3: slower bounces and falls (2: bounce 0.5-1.1 frame/s, fall g 3-5); 2: objects 0.13-0.18 of the frame (1: 0.08-0.12)
SPLIT_ID = {"train": 0, "heldout": 1}
_COMBOS = {}


def clip_rng(seed, split, index):
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed), SPLIT_ID[split], int(index), VERSION]))


def generate_clip(seed, split, index, size=128, fps=16, seconds=3.0,
                  sr=audio_mod.SR, combo=None):
    """One clip as a dict (see the module doc for the fields). combo
    (colour, shape, background, motion) overrides the split's draw."""
    rng = clip_rng(seed, split, index)
    if split not in _COMBOS:
        _COMBOS[split] = captions.split_combos(split)
    combos = _COMBOS[split]
    pick = combos[int(rng.integers(len(combos)))]
    colour, shape, background, motion = combo or pick
    template = int(rng.integers(len(captions.TEMPLATES)))
    phrase = int(rng.integers(len(captions.MOTION_PHRASES[motion])))
    scene = scenes.sample_scene(rng, colour, shape, background, motion, seconds)
    mot = scenes.scene_motion(scene)
    gt = scenes.ground_truth(scene, mot, size, fps)
    video = scenes.render(scene, gt, size)
    snd = audio_mod.synth_audio(shape, gt["impact_times"], gt["impact_speeds"],
                                seconds, rng, sr)
    attrs = dict(colour=colour, shape=shape, background=background, motion=motion)
    return {
        "video": video, "audio": snd,
        "caption": captions.caption(colour, shape, background, motion, template, phrase),
        "caption_canonical": captions.caption(colour, shape, background, motion),
        "attributes": attrs,
        "attrs": np.array([captions.VALUES[a].index(attrs[a]) for a in captions.ATTRS],
                          np.int16),
        "colour_rgb": np.array(captions.COLOURS[colour], np.uint8),
        "background_rgb": np.array(captions.BACKGROUNDS[background], np.uint8),
        "centre": gt["centre"], "bbox": gt["bbox"], "velocity": gt["velocity"],
        "radius": np.float32(scene["r"] * size),
        "impact_times": gt["impact_times"],
        "impact_frames": gt["impact_frames"].astype(np.int32),
        "impact_speeds": (gt["impact_speeds"] * size).astype(np.float32),
        "impact_walls": list(gt["impact_walls"]),
        "clip_index": index, "scene": scene, "motion": mot,
    }


def meta_dict(seed, split, size, fps, seconds, sr):
    return {"version": VERSION, "seed": int(seed), "split": split, "size": size,
            "fps": fps, "seconds": seconds, "sr": sr,
            "frames": int(round(seconds * fps)), "samples": int(round(seconds * sr)),
            "attrs": list(captions.ATTRS),
            "values": {a: list(captions.VALUES[a]) for a in captions.ATTRS},
            "colours": {k: list(v) for k, v in captions.COLOURS.items()},
            "backgrounds": {k: list(v) for k, v in captions.BACKGROUNDS.items()},
            "pitch_hz": captions.PITCH}


def stack_clips(clips, meta):
    N = len(clips)
    K = max([1] + [len(c["impact_times"]) for c in clips])
    out = {k: np.stack([c[k] for c in clips]) for k in (
        "video", "audio", "attrs", "colour_rgb", "background_rgb",
        "centre", "bbox", "velocity")}
    out["radius"] = np.array([c["radius"] for c in clips], np.float32)
    out["caption"] = np.array([c["caption"] for c in clips])
    out["caption_canonical"] = np.array([c["caption_canonical"] for c in clips])
    out["clip_index"] = np.array([c["clip_index"] for c in clips], np.int64)
    out["impact_count"] = np.array([len(c["impact_times"]) for c in clips], np.int32)
    it = np.full((N, K), np.nan)
    fr = np.full((N, K), -1, np.int32)
    sp = np.full((N, K), np.nan, np.float32)
    wl = np.full((N, K), "", dtype="<U16")
    for i, c in enumerate(clips):
        n = len(c["impact_times"])
        it[i, :n], fr[i, :n], sp[i, :n] = c["impact_times"], c["impact_frames"], c["impact_speeds"]
        wl[i, :n] = c["impact_walls"]
    out.update(impact_times=it, impact_frames=fr, impact_speeds=sp, impact_walls=wl)
    out["meta"] = np.array(json.dumps(meta, sort_keys=True))
    return out


def write_npz(path, arrays, level=1):
    """Like np.savez_compressed, but byte-reproducible (fixed timestamps,
    sorted names) and at a chosen deflate level."""
    # per-process temp name: two training stages may make the same (identical)
    # dataset at once; each renames its own complete file into place
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with zipfile.ZipFile(tmp, "w", allowZip64=True) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED,
                        compresslevel=level)
    os.replace(tmp, path)


def write_shard(path, clips, meta):
    write_npz(path, stack_clips(clips, meta))


def load_shard(path):
    """A shard as a dict of arrays; 'meta' decoded to a dict."""
    with np.load(path, allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    d["meta"] = json.loads(str(d["meta"]))
    return d


def shard_clips(d):
    """Per-clip dicts from a loaded shard, impacts unpadded, attributes named."""
    meta = d["meta"]
    for i in range(d["video"].shape[0]):
        n = int(d["impact_count"][i])
        c = {k: d[k][i] for k in ("video", "audio", "centre", "bbox", "velocity",
                                  "colour_rgb", "background_rgb", "radius", "clip_index")}
        c["caption"] = str(d["caption"][i])
        c["caption_canonical"] = str(d["caption_canonical"][i])
        c["attributes"] = {a: meta["values"][a][int(d["attrs"][i, j])]
                           for j, a in enumerate(meta["attrs"])}
        c["impact_times"] = d["impact_times"][i, :n]
        c["impact_frames"] = d["impact_frames"][i, :n]
        c["impact_speeds"] = d["impact_speeds"][i, :n]
        c["impact_walls"] = [str(w) for w in d["impact_walls"][i, :n]]
        yield c


def shard_name(split, seed, k):
    return "%s-s%d-%05d.npz" % (split, seed, k)


def _make_shard(job):
    out, seed, split, k, lo, hi, size, fps, seconds, sr = job
    clips = [generate_clip(seed, split, i, size, fps, seconds, sr) for i in range(lo, hi)]
    name = shard_name(split, seed, k)
    write_shard(os.path.join(out, name), clips, meta_dict(seed, split, size, fps, seconds, sr))
    return name, hi - lo


def make_dataset(out, n, seed=0, split="train", size=128, fps=16, seconds=3.0,
                 sr=audio_mod.SR, shard_size=32, workers=1):
    os.makedirs(out, exist_ok=True)
    jobs = [(out, seed, split, k, lo, min(n, lo + shard_size), size, fps, seconds, sr)
            for k, lo in enumerate(range(0, n, shard_size))]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing as mp
        with mp.get_context("fork").Pool(workers) as pool:
            done = pool.map(_make_shard, jobs, chunksize=1)
    else:
        done = [_make_shard(j) for j in jobs]
    index = {"meta": meta_dict(seed, split, size, fps, seconds, sr), "n": n,
             "shard_size": shard_size,
             "shards": [{"file": f, "clips": c} for f, c in done]}
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")
    return index


# ---------------------------------------------------------------- previews

def write_png(path, img):
    """uint8 [H,W,3] -> PNG (standard library only)."""
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def write_wav(path, x, sr):
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def contact_sheet(clips, cols=8):
    rows = []
    for c in clips:
        v = c["video"]
        T, H, W, _ = v.shape
        idx = np.linspace(0, T - 1, cols).round().astype(int)
        strip = np.concatenate([np.pad(v[i], ((1, 1), (1, 1), (0, 0)), constant_values=90)
                                for i in idx], 1)
        wh, ww = max(16, H // 4), strip.shape[1]
        wav = np.zeros((wh, ww, 3), np.uint8)
        a = c["audio"]
        seg = np.array_split(np.abs(a), ww)
        peak = np.array([s.max() if s.size else 0 for s in seg])
        hgt = np.clip(np.rint(peak * (wh - 1)), 0, wh - 1).astype(int)
        for x in range(ww):
            if hgt[x]:
                wav[wh - hgt[x]:, x] = 200
        seconds = T / c.get("fps", 16)
        for t in c["impact_times"]:
            x = min(ww - 1, int(t / seconds * ww))
            wav[: wh // 3, x] = (255, 40, 40)
        rows.append(np.concatenate([strip, wav, np.full((4, ww, 3), 60, np.uint8)], 0))
    return np.concatenate(rows, 0)


def preview(clips, out, fps, sr):
    os.makedirs(out, exist_ok=True)
    lines = []
    ff = shutil.which("ffmpeg")
    for k, c in enumerate(clips):
        lines.append("clip_%03d.mp4\t%s\timpacts(s)=%s" % (
            k, c["caption"], " ".join("%.4f" % t for t in c["impact_times"])))
        if not ff:
            continue
        T, H, W, _ = c["video"].shape
        with tempfile.TemporaryDirectory() as td:
            wav = os.path.join(td, "a.wav")
            write_wav(wav, c["audio"], sr)
            cmd = [ff, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                   "-s", "%dx%d" % (W, H), "-r", str(fps), "-i", "-", "-i", wav,
                   "-vf", "scale=iw*4:ih*4:flags=neighbor", "-c:v", "libx264",
                   "-pix_fmt", "yuv420p", "-crf", "18", "-c:a", "aac", "-b:a", "96k",
                   "-shortest", os.path.join(out, "clip_%03d.mp4" % k)]
            subprocess.run(cmd, input=c["video"].tobytes(), check=True)
    with open(os.path.join(out, "captions.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    for c in clips:
        c["fps"] = fps
    write_png(os.path.join(out, "contact_sheet.png"), contact_sheet(clips))
    if not ff:
        print("make_dataset: no ffmpeg on PATH; wrote only the contact sheet", file=sys.stderr)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="shard directory")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--split", choices=("train", "heldout"), default="train")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--fps", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--sr", type=int, default=audio_mod.SR)
    ap.add_argument("--shard-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--preview", metavar="DIR", help="write MP4s and a contact sheet here")
    ap.add_argument("--preview-n", type=int, default=4)
    a = ap.parse_args(argv)
    if not a.out and not a.preview:
        ap.error("nothing to do: give --out and/or --preview")
    if a.size < 32 or a.n < 1 or a.shard_size < 1 or a.seconds <= 0 or a.fps < 1:
        ap.error("need --size >= 32, --n >= 1, --shard-size >= 1, --seconds > 0, --fps >= 1")
    for rate in (a.fps, a.sr):
        if abs(a.seconds * rate - round(a.seconds * rate)) > 1e-9:
            ap.error("--seconds x %d must be a whole number" % rate)
    t0 = time.perf_counter()
    if a.out:
        idx = make_dataset(a.out, a.n, a.seed, a.split, a.size, a.fps, a.seconds,
                           a.sr, a.shard_size, a.workers)
        dt = time.perf_counter() - t0
        print("make_dataset: %d %s clips in %d shards -> %s (%.1f s, %.1f clips/s)" % (
            a.n, a.split, len(idx["shards"]), a.out, dt, a.n / dt))
    if a.preview:
        clips = [generate_clip(a.seed, a.split, i, a.size, a.fps, a.seconds, a.sr)
                 for i in range(min(a.n, a.preview_n))]
        preview(clips, a.preview, a.fps, a.sr)
        print("make_dataset: preview of %d clips -> %s" % (len(clips), a.preview))


if __name__ == "__main__":
    main()
