#!/usr/bin/python3
"""eval_default.py - render held-out prompts with a model through the reel
binary, read the MP4s back and measure prompt adherence, motion and sync.

    eval_default.py [--prompts FILE] [--reel PATH] [--model NAME|PATH]
                    [--out DIR] [--seed S] [--n N] [--jobs 1] [--threads N]
                    [--steps N] [--set KEY=VALUE]... [--json FILE] [--frames N]
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
Per-clip details go to DIR/eval.json (or --json FILE). Before the
closing lines, how broken the incoherent clips are (frames with no single
object: specks or a split object, summed over the clips, and the clips
with any):

    eval-objects: frames_without_object=N/M clips_without_object=K n=N

The last line is

    eval: colour_acc=X shape_acc=X coherent=X sync_1f=X n=N render_s_per_clip=X

--frames N also renders, for the first N prompts, an image-to-video clip
(`image:` the first frame of a held-out synthetic clip of that prompt) and
a first/last-frame clip (`image:` + `last_image:`), and measures the PSNR
of the rendered first / last frame against the given image after the
model's VAE round trip (what a perfect render would give back); the line
before the last is

    eval-frames: i2v_first_psnr=X flf_first_psnr=X flf_last_psnr=X min_psnr=X n=N

--vae-ceiling N scores N held-out ground-truth clips of the prompts after
the model's VAE round trip alone (no DiT, no sampler): the ceiling of any
render with that VAE; ends with

    eval-vae: colour_acc=X shape_acc=X coherent=X sync_1f=X n=N

With --ground-truth the same clips are scored as generated, without the
VAE (the metrics' own calibration: what a perfect render reads back); the
line starts eval-gt: instead.

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

def render(reel, job_dir, i, prompt, seed, model, sets, threads, name="clip", images=None):
    """Render one prompt; returns (mp4 path, seconds). images: spec keys
    (image, last_image) -> PNG file names in job_dir."""
    job = os.path.join(job_dir, "%s_%03d.yaml" % (name, i))
    out = os.path.join(job_dir, "%s_%03d.mp4" % (name, i))
    with open(job, "w") as f:
        f.write("version: 1\n")
        if model:
            f.write("model: %s\n" % json.dumps(model))
        for key, png in (images or {}).items():
            f.write("%s: %s\n" % (key, json.dumps(png)))
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


# ---------------------------------------------------------------- frames

FRAMES_SEED = 7   # the held-out clips whose first / last frames are given


def model_config_path(model):
    if not model:
        return os.path.join(ROOT, "configs", "reel-default.yaml")
    if os.path.exists(model):
        return model
    return os.path.join(ROOT, "configs", model + ".yaml")


def _train_common():
    """scripts/train/common (torch-backed; imported only by the modes that
    run the VAE, so a plain evaluation starts without torch)."""
    sys.path.insert(0, os.path.join(HERE, "train"))
    import common
    return common


def model_defaults(cfg_path):
    """(width, height, fps, frames) of a model config's defaults."""
    import yaml
    with open(cfg_path) as f:
        d = yaml.safe_load(f)["defaults"]
    (W, H), fps, F = d["size"], d["fps"], d["frames"]
    return W, H, fps, F


def heldout_clip(i, attrs, size, fps, frames):
    """Held-out synthetic clip i of the prompt's attributes (FRAMES_SEED):
    the ground truth the --frames and --vae-ceiling modes start from."""
    sys.path.insert(0, os.path.join(HERE, "synth"))
    import make_dataset as md
    combo = tuple(attrs[k] for k in captions.ATTRS)
    return md.generate_clip(FRAMES_SEED, "heldout", i, size=size, fps=fps, seconds=frames / fps,
                            combo=combo)


def vae_round_trip(cfg_path, clips, tool, weights=None):
    """clips uint8 [N,T,H,W,3] -> the same through the model's VAE encoder
    and decoder (common.c_vae: reel's C VAE, z = mu): uint8 [N,T',H,W,3],
    T' the frames the latent decodes to (T for 1 + 4k). weights: another
    VAE file of the config's architecture."""
    common = _train_common()
    mc = common.load_model_config(cfg_path)
    if int(mc["vae"]["version"]) != 21:
        raise RuntimeError("%s: the VAE round trip is for Wan2.1 VAEs (version %s)" % (
            cfg_path, mc["vae"]["version"]))
    weights = weights or os.path.join(os.path.dirname(os.path.abspath(cfg_path)), mc["weights_dir"],
                                      mc["vae"]["weights"])
    x = (clips.astype(np.float32) / 127.5 - 1.0).transpose(0, 4, 1, 2, 3)   # [N, 3, T, H, W]
    _, rec = common.c_vae(common.vae_cfg(mc), weights, x, recon=True, tool=tool)
    return np.clip(np.round((rec.transpose(0, 2, 3, 4, 1) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def vae_ceiling(a, prompts):
    """The best any DiT could score with this VAE: held-out synthetic clips
    of the prompts (ground truth, with their own sound) sent through the
    VAE and scored like renders. Returns (summary, per-clip records)."""
    cfg_path = model_config_path(a.model)
    W, _, fps, F = model_defaults(cfg_path)
    recs, todo = [], prompts[:a.vae_ceiling]
    for i, (prompt, attrs) in enumerate(todo):
        clip = heldout_clip(i, attrs, W, fps, F)
        rt = clip["video"][:F] if a.ground_truth else \
            vae_round_trip(cfg_path, clip["video"][None, :F], a.vae_tool, a.vae_weights)[0]
        audio = clip["audio"][:int(round(F / fps * AUDIO_SR))].astype(np.float32)
        r = eval_metrics.evaluate_clip(rt, fps, audio, AUDIO_SR, attrs)
        r.update(prompt=prompt, vae_psnr=round(psnr_u8(rt, clip["video"][:F]), 2))
        recs.append(r)
        print("eval: vae [%d/%d] colour=%s shape=%s coherent=%d sync=%d/%d psnr %.1f  %s" % (
            i + 1, len(todo), r["colour"], r["shape"], r["coherent"],
            r["sync_matched"], r["sync_expected"], r["vae_psnr"], prompt), file=sys.stderr, flush=True)
    return eval_metrics.summarise(recs), recs


def psnr_u8(a, b):
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)


def eval_frames(a, prompts, out_dir, sets):
    """Image-to-video (image: first frame) and first/last-frame (image +
    last_image) renders of held-out synthetic clips: PSNR of the rendered
    frames at the given positions against the given images after the VAE
    round trip. Returns (summary, per-clip records)."""
    sys.path.insert(0, os.path.join(HERE, "synth"))
    import make_dataset as md
    cfg_path = model_config_path(a.model)
    W, H, fps, F = model_defaults(cfg_path)
    if W != H:
        raise RuntimeError("%s: --frames needs a square default size" % cfg_path)
    recs, todo = [], prompts[:a.frames]
    for i, (prompt, attrs) in enumerate(todo):
        clip = heldout_clip(i, attrs, W, fps, F)
        first, last = clip["video"][0], clip["video"][F - 1]
        md.write_png(os.path.join(out_dir, "given_%03d_first.png" % i), first)
        md.write_png(os.path.join(out_dir, "given_%03d_last.png" % i), last)
        rt_first, rt_last = vae_round_trip(cfg_path, np.stack([first, last])[:, None],
                                           a.vae_tool)[:, 0]
        rec = {"prompt": prompt}
        for name, images in (("i2v", {"image": "given_%03d_first.png" % i}),
                             ("flf", {"image": "given_%03d_first.png" % i,
                                      "last_image": "given_%03d_last.png" % i})):
            mp4, dt = render(a.reel, out_dir, i, prompt, a.seed + i, a.model, sets, a.threads,
                             name=name, images=images)
            video, _, _ = read_clip(mp4)
            if video.shape[0] != F:
                raise RuntimeError("%s: %d frames, the model's default is %d" % (mp4, video.shape[0], F))
            rec[name + "_first_psnr"] = round(psnr_u8(video[0], rt_first), 2)
            if "last_image" in images:
                rec[name + "_last_psnr"] = round(psnr_u8(video[-1], rt_last), 2)
            rec[name + "_render_s"] = round(dt, 3)
        rec["vae_first_psnr"] = round(psnr_u8(rt_first, first), 2)
        recs.append(rec)
        print("eval: frames [%d/%d] i2v first %.1f dB, first/last %.1f / %.1f dB  %s" % (
            i + 1, len(todo), rec["i2v_first_psnr"], rec["flf_first_psnr"], rec["flf_last_psnr"],
            prompt), file=sys.stderr, flush=True)
    keys = ("i2v_first_psnr", "flf_first_psnr", "flf_last_psnr")
    summ = {k: float(np.mean([r[k] for r in recs])) for k in keys}
    summ["min_psnr"] = float(min(r[k] for r in recs for k in keys))
    summ["n"] = len(recs)
    return summ, recs


def frames_line(s):
    return "eval-frames: i2v_first_psnr=%.2f flf_first_psnr=%.2f flf_last_psnr=%.2f min_psnr=%.2f n=%d" % (
        s["i2v_first_psnr"], s["flf_first_psnr"], s["flf_last_psnr"], s["min_psnr"], s["n"])


def objects_line(s):
    return "eval-objects: frames_without_object=%d/%d clips_without_object=%d n=%d" % (
        s["frames_without_object"], s["frames_total"], s["clips_without_object"], s["n"])


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
    ap.add_argument("--frames", type=int, default=0, metavar="N",
                    help="also render N image-to-video and N first/last-frame clips (the first N "
                         "prompts) and report the PSNR of the given frames")
    ap.add_argument("--frames-only", action="store_true",
                    help="only the --frames renders; the last line is the eval-frames line")
    ap.add_argument("--vae-ceiling", type=int, default=0, metavar="N",
                    help="score N held-out ground-truth clips after the VAE round trip alone "
                         "(no DiT: the best a render can reach with this VAE) and exit")
    ap.add_argument("--vae-weights", help="with --vae-ceiling: a VAE file other than the model's")
    ap.add_argument("--ground-truth", action="store_true",
                    help="with --vae-ceiling: score the held-out clips as generated, no VAE round trip")
    ap.add_argument("--vae-tool", default=os.path.join(ROOT, "build", "tests", "tool_vae_encode"),
                    help="the VAE round trip of --frames and --vae-ceiling")
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

    if a.vae_ceiling > 0:
        try:
            s, recs = vae_ceiling(a, prompts)
        except (RuntimeError, OSError) as e:
            print("eval_default: %s" % e, file=sys.stderr)
            return 1
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"summary": s, "clips": recs}, f, indent=1, default=str)
        print("eval-%s: colour_acc=%s shape_acc=%s coherent=%s sync_1f=%s n=%d" % (
            "gt" if a.ground_truth else "vae", fmt(s["colour_acc"]), fmt(s["shape_acc"]), fmt(s["coherent"]), fmt(s["sync_1f"]), s["n"]))
        return 0
    out_dir = os.path.abspath(a.out) if a.out else tempfile.mkdtemp(prefix="reel-eval-")
    os.makedirs(out_dir, exist_ok=True)
    if a.frames_only and a.frames <= 0:
        ap.error("--frames-only needs --frames N")
    results, times, frames = [], [], None
    try:
        for i, (prompt, attrs) in enumerate([] if a.frames_only else prompts):
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
        if a.frames > 0:
            frames = eval_frames(a, prompts, out_dir, sets)
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
                       "clips": results,
                       "frames": {"summary": frames[0], "clips": frames[1]} if frames else None},
                      f, indent=1, default=str)
            f.write("\n")
    if results:
        print(objects_line(s))
    if frames:
        print(frames_line(frames[0]))
    if not a.frames_only:
        print(eval_line(s, rs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
