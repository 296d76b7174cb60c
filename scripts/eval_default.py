#!/usr/bin/python3
"""eval_default.py - render held-out prompts with a model through the reel
binary, read the MP4s back and measure prompt adherence, motion and sync.

    eval_default.py [--prompts FILE] [--reel PATH] [--model NAME|PATH]
                    [--out DIR] [--seed S] [--n N] [--jobs 1] [--threads N]
                    [--steps N] [--set KEY=VALUE]... [--json FILE]
    eval_default.py --write-prompts FILE      (the default list, then exit)
    eval_default.py --score CLIP.mp4 --prompt CAPTION   (score one file)

Prompts: one caption of the synthetic grammar (scripts/synth/captions.py)
a line; blank lines and lines starting with '#' are skipped. Default:
tests/eval/heldout_prompts.txt, DEFAULT_N canonical captions of held-out
combinations picked by default_prompts() (written there when missing).
Clip i renders with seed S + i into DIR/clip_NNN.mp4 (kept; DIR defaults
to a temporary folder that is removed). Size, fps and frame count are the
model's defaults; they are read back from the files with ffprobe.

Metrics (scripts/eval_metrics.py documents each): colour_acc, shape_acc
(the object's colour / shape read from the frames equals the prompt's),
coherent (one object in every frame, no flicker, moving as the prompt
says), sync_1f (video wall hits matched by audio onsets within one frame),
n (clips) and render_s_per_clip (mean wall time of `reel render`).
Per-clip details go to DIR/eval.json (or --json FILE). The last line is

    eval: colour_acc=X shape_acc=X coherent=X sync_1f=X n=N render_s_per_clip=X

Exit status: 0 done, 2 bad arguments or prompts, 1 a render or decode failed.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "synth"))
import captions  # noqa: E402
import eval_metrics  # noqa: E402

DEFAULT_PROMPTS = os.path.join(ROOT, "tests", "eval", "heldout_prompts.txt")
DEFAULT_N = 50
AUDIO_SR = 16000


# ---------------------------------------------------------------- prompts

def default_prompts(n=DEFAULT_N):
    """n canonical captions of held-out combinations, chosen greedily so that
    colours, shapes, motions, backgrounds and (colour, shape), (shape,
    motion) pairs are as evenly covered as possible; ties go to the lower
    combo_hash. Depends on captions.py only."""
    pool = sorted(captions.split_combos("heldout"), key=captions.combo_hash)
    counts = {}

    def keys(c):
        col, shp, bg, mot = c
        return [("c", col), ("s", shp), ("b", bg), ("m", mot), ("cs", col, shp),
                ("sm", shp, mot)]
    picked = []
    while pool and len(picked) < n:
        best = min(range(len(pool)), key=lambda i: (
            sum(counts.get(k, 0) for k in keys(pool[i])), i))
        c = pool.pop(best)
        picked.append(c)
        for k in keys(c):
            counts[k] = counts.get(k, 0) + 1
    return [captions.caption(*c) for c in picked]


def write_prompts(path, prompts):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("# Held-out prompts for `make eval-default` (scripts/eval_default.py\n"
                "# --write-prompts): canonical captions of held-out combinations of\n"
                "# scripts/synth/captions.py, one a line.\n")
        f.write("\n".join(prompts) + "\n")
    os.replace(tmp, path)


def read_prompts(path):
    """[(caption, attrs)]; raises ValueError naming file:line for a caption
    the grammar cannot produce."""
    out = []
    with open(path) as f:
        for ln, line in enumerate(f, 1):
            t = line.strip()
            if not t or t.startswith("#"):
                continue
            try:
                out.append((t, captions.parse(t)))
            except ValueError as e:
                raise ValueError("%s:%d: %s" % (path, ln, e))
    return out


# ---------------------------------------------------------------- media

def probe(path):
    """(width, height, fps, has_audio) of a media file via ffprobe."""
    r = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                        "stream=codec_type,width,height,avg_frame_rate,r_frame_rate",
                        "-of", "json", path],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("%s: ffprobe failed: %s" % (path, r.stderr.strip()))
    streams = json.loads(r.stdout).get("streams", [])
    vs = [s for s in streams if s.get("codec_type") == "video"]
    if not vs:
        raise RuntimeError("%s: no video stream" % path)
    v = vs[0]
    num, den = v.get("avg_frame_rate", "0/1").split("/")
    fps = float(num) / float(den) if float(den) else 0.0
    if fps <= 0:
        num, den = v["r_frame_rate"].split("/")
        fps = float(num) / float(den)
    return int(v["width"]), int(v["height"]), fps, any(
        s.get("codec_type") == "audio" for s in streams)


def read_clip(path, sr=AUDIO_SR):
    """(video uint8 [T,H,W,3], fps, audio float32 [n] mono at sr or None).
    One ffmpeg run decodes both streams (frames to stdout, audio to a
    temporary file)."""
    w, h, fps, has_audio = probe(path)
    with tempfile.TemporaryDirectory(prefix="reel-eval-dec-") as td:
        apath = os.path.join(td, "a.f32")
        cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-map", "0:v:0", "-f", "rawvideo",
               "-pix_fmt", "rgb24", "pipe:1"]
        if has_audio:
            cmd += ["-map", "0:a:0", "-f", "f32le", "-ac", "1", "-ar", str(sr), apath]
        r = subprocess.run(cmd, capture_output=True)
        if r.returncode != 0:
            raise RuntimeError("%s: ffmpeg decode failed: %s" % (path, r.stderr.decode().strip()))
        audio = np.fromfile(apath, "<f4").astype(np.float32) if has_audio else None
    video = np.frombuffer(r.stdout, np.uint8)
    if video.size == 0 or video.size % (w * h * 3):
        raise RuntimeError("%s: decoded %d bytes, not whole %dx%d frames" % (path, video.size, w, h))
    return video.reshape(-1, h, w, 3), fps, audio


# ---------------------------------------------------------------- render

def render(reel, job_dir, i, prompt, seed, model, sets, threads):
    """Render one prompt; returns (mp4 path, seconds)."""
    job = os.path.join(job_dir, "clip_%03d.yaml" % i)
    out = os.path.join(job_dir, "clip_%03d.mp4" % i)
    with open(job, "w") as f:
        f.write("version: 1\n")
        if model:
            f.write("model: %s\n" % json.dumps(model))
        f.write("prompt: %s\nseed: %d\noutput:\n  path: %s\n" % (
            json.dumps(prompt), seed, json.dumps(os.path.basename(out))))
    cmd = [reel, "render", job, "-o", out]
    for s in sets:
        cmd += ["--set", s]
    if threads:
        cmd += ["--threads", str(threads)]
    with tempfile.TemporaryDirectory(prefix="reel-eval-wd-") as wd:
        cmd += ["--workdir", os.path.join(wd, "w")]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError("reel render %s failed (exit %d): %s" % (
            job, r.returncode, r.stderr.strip()[-2000:]))
    return out, dt


def fmt(x):
    return "nan" if x != x else "%.3f" % x


def eval_line(s, render_s):
    return "eval: colour_acc=%s shape_acc=%s coherent=%s sync_1f=%s n=%d render_s_per_clip=%s" % (
        fmt(s["colour_acc"]), fmt(s["shape_acc"]), fmt(s["coherent"]), fmt(s["sync_1f"]),
        s["n"], fmt(render_s) if render_s == render_s else "nan")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", help="caption list, one a line (default: %s)"
                    % os.path.relpath(DEFAULT_PROMPTS, ROOT))
    ap.add_argument("--reel", default=os.path.join(ROOT, "build", "reel"))
    ap.add_argument("--model", default=None, help="model name or config path (default: the job default, reel-default)")
    ap.add_argument("--out", help="keep the jobs, MP4s and eval.json here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--n", type=int, default=0, help="only the first N prompts")
    ap.add_argument("--jobs", type=int, default=1, help="parallel renders (only 1 is supported)")
    ap.add_argument("--threads", type=int, default=0, help="reel --threads")
    ap.add_argument("--steps", type=int, default=0, help="sampler steps (--set sampler.steps=N)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to reel render --set (repeatable)")
    ap.add_argument("--json", help="per-clip results (default: OUT/eval.json when --out)")
    ap.add_argument("--write-prompts", metavar="FILE", help="write the default prompt list and exit")
    ap.add_argument("--score", metavar="MP4", help="score one existing file and exit")
    ap.add_argument("--prompt", help="the caption for --score")
    a = ap.parse_args(argv)

    if a.write_prompts:
        write_prompts(a.write_prompts, default_prompts())
        print("eval_default: %d prompts -> %s" % (DEFAULT_N, a.write_prompts))
        return 0
    if a.score:
        if not a.prompt:
            ap.error("--score needs --prompt")
        attrs = captions.parse(a.prompt)
        video, fps, audio = read_clip(a.score)
        res = eval_metrics.evaluate_clip(video, fps, audio, AUDIO_SR, attrs)
        print(json.dumps(res, indent=1))
        return 0
    if a.jobs != 1:
        ap.error("--jobs: only 1 is supported (renders use every core)")

    path = a.prompts or DEFAULT_PROMPTS
    if not a.prompts and not os.path.exists(path):
        write_prompts(path, default_prompts())
    try:
        prompts = read_prompts(path)
    except (OSError, ValueError) as e:
        print("eval_default: %s" % e, file=sys.stderr)
        return 2
    if a.n > 0:
        prompts = prompts[:a.n]
    if not prompts:
        print("eval_default: %s: no prompts" % path, file=sys.stderr)
        return 2
    if not os.access(a.reel, os.X_OK):
        print("eval_default: %s: no reel binary (run make)" % a.reel, file=sys.stderr)
        return 2
    sets = list(a.set)
    if a.steps:
        sets.append("sampler.steps=%d" % a.steps)

    out_dir = os.path.abspath(a.out) if a.out else tempfile.mkdtemp(prefix="reel-eval-")
    os.makedirs(out_dir, exist_ok=True)
    results, times = [], []
    try:
        for i, (prompt, attrs) in enumerate(prompts):
            mp4, dt = render(a.reel, out_dir, i, prompt, a.seed + i, a.model, sets, a.threads)
            times.append(dt)
            video, fps, audio = read_clip(mp4)
            r = eval_metrics.evaluate_clip(video, fps, audio, AUDIO_SR, attrs)
            r.update(prompt=prompt, seed=a.seed + i, file=os.path.basename(mp4),
                     render_s=round(dt, 3), has_audio=audio is not None)
            results.append(r)
            print("eval: [%d/%d] %.1fs colour=%s shape=%s coherent=%d sync=%d/%d  %s" % (
                i + 1, len(prompts), dt, r["colour"], r["shape"], r["coherent"],
                r["sync_matched"], r["sync_expected"], prompt), file=sys.stderr, flush=True)
    except (RuntimeError, OSError) as e:
        print("eval_default: %s" % e, file=sys.stderr)
        return 1
    finally:
        if not a.out:
            shutil.rmtree(out_dir, ignore_errors=True)
    s = eval_metrics.summarise(results)
    rs = float(np.mean(times)) if times else float("nan")
    jpath = a.json or (os.path.join(out_dir, "eval.json") if a.out else None)
    if jpath:
        with open(jpath, "w") as f:
            json.dump({"summary": dict(s, render_s_per_clip=rs, prompts=path,
                                       reel=a.reel, model=a.model, sets=sets),
                       "clips": results}, f, indent=1, default=str)
            f.write("\n")
    print(eval_line(s, rs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
