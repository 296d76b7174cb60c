#!/usr/bin/python3
"""check_metrics.py - prove the metrics of scripts/eval_metrics.py on ground
truth (tests/t_eval.sh). Held-out synthetic clips (make_dataset.generate_clip,
split heldout) are encoded to MP4 the way reel does (libx264 yuv420p crf 18,
AAC 48 kHz), read back with eval_default.read_clip and scored against their
captions; then broken versions of them must score badly. Prints ok/FAIL lines."""
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
sys.path.insert(0, os.path.join(ROOT, "scripts", "synth"))
import captions  # noqa: E402
import eval_default  # noqa: E402
import eval_metrics as em  # noqa: E402
import make_dataset  # noqa: E402

N = int(os.environ.get("EVAL_CHECK_N", "40"))
SIZE, FPS, SECONDS, SR = 128, 16, 3.0625, 16000     # 49 frames, the default model's length
fails = 0


def check(name, cond, detail=""):
    global fails
    if cond:
        print("ok - %s%s" % (name, (" (" + detail + ")") if detail else ""))
    else:
        fails += 1
        print("FAIL - %s: %s" % (name, detail))


def encode(path, video, audio, sr=SR, fps=FPS):
    T, H, W, _ = video.shape
    with tempfile.TemporaryDirectory() as td:
        wav = os.path.join(td, "a.wav")
        make_dataset.write_wav(wav, audio, sr)
        cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", "%dx%d" % (W, H), "-r", str(fps), "-i", "-", "-i", wav,
               "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18",
               "-c:a", "aac", "-ar", "48000", "-b:a", "128k", path]
        subprocess.run(cmd, input=video.tobytes(), check=True)


def score(path, caption):
    v, fps, a = eval_default.read_clip(path)
    return em.evaluate_clip(v, fps, a, eval_default.AUDIO_SR, captions.parse(caption))


def score_mem(clip):
    return em.evaluate_clip(clip["video"], FPS, clip["audio"], SR, captions.parse(clip["caption"]))


def main():
    t0 = time.time()
    td = tempfile.mkdtemp(prefix="t_eval-")
    clips = [make_dataset.generate_clip(7, "heldout", i, SIZE, FPS, SECONDS, SR) for i in range(N)]
    res = []
    gt_hit, gt_n, on_hit, on_n = 0, 0, 0, 0
    for i, c in enumerate(clips):
        p = os.path.join(td, "c%03d.mp4" % i)
        encode(p, c["video"], c["audio"])
        r = score(p, c["caption"])
        res.append(r)
        # the detectors against the analytic impact times (coherent clips).
        # The video detector needs two frames after an impact and a visible
        # approach (V_MIN px/frame); a falling object's last rebounds move
        # less than that and are left to the audio check below.
        gt = list(c["impact_times"])
        frames = c["video"].shape[0]
        gt_vis = [t for t, v in zip(c["impact_times"], c["impact_speeds"])
                  if v >= em.V_MIN * FPS and t <= (frames - 3) / FPS]
        if r["coherent"] and gt_vis:
            gt_n += len(gt_vis)
            m, _ = em.match(gt_vis, r["video_hits"], 1.0 / FPS)
            gt_hit += m
        if gt:
            m, _ = em.match(gt, r["onsets"], 0.5 / FPS)
            on_hit += m
            on_n += len(gt)
        if os.environ.get("EVAL_CHECK_VERBOSE"):
            print("# %s col=%s shp=%s coh=%s mot=%s sync=%d/%d gt=%s vid=%s on=%s why=%s err=%s" % (
                c["caption"], r["colour"], r["shape"], r["coherent"], r["motion"],
                r["sync_matched"], r["sync_expected"], [round(t, 3) for t in gt],
                r["video_hits"], r["onsets"], r["why"], r.get("shape_err")))
    s = em.summarise(res)
    print("# ground truth: %d held-out clips, %dx%d, %d frames @ %d fps, libx264 + aac" % (
        N, SIZE, SIZE, clips[0]["video"].shape[0], FPS))
    print("# colour_acc=%.3f shape_acc=%.3f coherent=%.3f sync_1f=%.3f (%d/%d) motion_acc=%.3f "
          "background_acc=%.3f" % (s["colour_acc"], s["shape_acc"], s["coherent"], s["sync_1f"],
                                   s["sync_matched"], s["sync_expected"], s["motion_acc"],
                                   s["background_acc"]))
    check("eval colour_acc on ground truth >= 0.95", s["colour_acc"] >= 0.95, "%.3f" % s["colour_acc"])
    check("eval shape_acc on ground truth >= 0.9", s["shape_acc"] >= 0.9, "%.3f" % s["shape_acc"])
    check("eval coherent on ground truth >= 0.9", s["coherent"] >= 0.9, "%.3f" % s["coherent"])
    check("eval ground truth: at most 1 % of frames without an object",
          s["frames_without_object"] <= 0.01 * s["frames_total"] and s["frames_total"] == 49 * s["n"],
          "%d/%d" % (s["frames_without_object"], s["frames_total"]))
    check("eval sync_1f on ground truth >= 0.9", s["sync_1f"] >= 0.9,
          "%.3f = %d/%d" % (s["sync_1f"], s["sync_matched"], s["sync_expected"]))
    check("eval sync counts events", s["sync_expected"] >= N // 4, "%d" % s["sync_expected"])
    check("eval video wall hits find the analytic impacts (1 frame)", gt_n and gt_hit / gt_n >= 0.85,
          "%d/%d" % (gt_hit, gt_n))
    check("eval audio onsets find the analytic impacts (half a frame)", on_n and on_hit / on_n >= 0.9,
          "%d/%d" % (on_hit, on_n))

    # --- negative checks: broken clips must score badly
    pick = {}
    for i, c in enumerate(clips):
        if res[i]["coherent"] and res[i]["colour_ok"] and res[i]["shape_ok"]:
            pick.setdefault(c["attributes"]["motion"], i)
    imp = [i for i, c in enumerate(clips) if res[i]["sync_expected"] >= 2
           and res[i]["sync_matched"] == res[i]["sync_expected"]][:4]

    # wrong prompt: same frames scored against another colour / shape
    i0 = pick.get("bounce", 0)
    c = clips[i0]
    at = c["attributes"]
    other_col = [k for k in captions.COLOURS if k != at["colour"]][0]
    other_shp = [k for k in captions.SHAPES if k != at["shape"]][0]
    p0 = os.path.join(td, "c%03d.mp4" % i0)
    r = score(p0, captions.caption(other_col, at["shape"], at["background"], at["motion"]))
    check("eval wrong colour in the prompt is not colour_ok", not r["colour_ok"], r["colour"])
    r = score(p0, captions.caption(at["colour"], other_shp, at["background"], at["motion"]))
    check("eval wrong shape in the prompt is not shape_ok", not r["shape_ok"], r["shape"])

    # the same scene re-rendered in every other colour / shape reads back as
    # that (scored from the frames in memory: the MP4 path is proven above)
    bad_col, bad_shp = [], []
    for col in captions.COLOURS:
        cl = make_dataset.generate_clip(7, "heldout", i0, SIZE, FPS, SECONDS, SR,
                                        combo=(col, at["shape"], at["background"], at["motion"]))
        if score_mem(cl)["colour"] != col:
            bad_col.append(col)
    check("eval every colour reads back as itself", not bad_col, "wrong: %s" % bad_col)
    for shp in captions.SHAPES:
        cl = make_dataset.generate_clip(7, "heldout", i0, SIZE, FPS, SECONDS, SR,
                                        combo=(at["colour"], shp, at["background"], at["motion"]))
        if score_mem(cl)["shape"] != shp:
            bad_shp.append(shp)
    check("eval every shape reads back as itself", not bad_shp, "wrong: %s" % bad_shp)

    # audio shifted by 3 frames: sync collapses
    mat = exp = 0
    for i in imp:
        cl = clips[i]
        sh = int(round(3 * SR / FPS))
        a = np.concatenate([np.zeros(sh, np.float32), cl["audio"][:-sh]])
        p = os.path.join(td, "shift.mp4")
        encode(p, cl["video"], a)
        r = score(p, cl["caption"])
        mat += r["sync_matched"]
        exp += r["sync_expected"]
    check("eval audio 3 frames late gives low sync", imp and exp and mat / exp <= 0.2,
          "%d clips, %d/%d" % (len(imp), mat, exp))
    # silence: nothing matches
    if imp:
        cl = clips[imp[0]]
        p = os.path.join(td, "silent.mp4")
        encode(p, cl["video"], np.zeros_like(cl["audio"]))
        r = score(p, cl["caption"])
        check("eval silent audio matches no wall hit", r["sync_matched"] == 0 and r["sync_expected"] >= 2,
              "%d/%d" % (r["sync_matched"], r["sync_expected"]))
        # sound on a still clip counts against sync
        st = pick.get("still")
        if st is not None:
            p = os.path.join(td, "still_loud.mp4")
            encode(p, clips[st]["video"], cl["audio"])
            r = score(p, clips[st]["caption"])
            check("eval impacts on a still clip count against sync",
                  r["sync_matched"] == 0 and r["sync_expected"] >= 2,
                  "%d/%d" % (r["sync_matched"], r["sync_expected"]))

    # the same motion with 24 px of background round the frame: the object
    # turns round 24 px from the walls, beyond WALL_SLACK - no wall hits
    if imp:
        cl = clips[imp[0]]
        T, H, W, _ = cl["video"].shape
        v = np.empty((T, H + 48, W + 48, 3), np.uint8)
        v[:] = cl["background_rgb"]
        v[:, 24:24 + H, 24:24 + W] = cl["video"]
        p = os.path.join(td, "inset.mp4")
        encode(p, v, cl["audio"])
        r = score(p, cl["caption"])
        check("eval reversals 24 px from the walls are no wall hits",
              r["coherent"] and not r["video_hits"] and r["sync_matched"] == 0,
              "coherent %s, hits %s" % (r["coherent"], r["video_hits"]))
    # flicker: every other frame blanked to the background
    for mot in ("bounce", "still"):
        if mot not in pick:
            continue
        cl = clips[pick[mot]]
        v = cl["video"].copy()
        v[1::2] = cl["background_rgb"]
        p = os.path.join(td, "flicker.mp4")
        encode(p, v, cl["audio"])
        r = score(p, cl["caption"])
        check("eval flickering %s object is not coherent" % mot, not r["coherent"], "; ".join(r["why"])[:80])
    # a single dropped frame in the middle
    if "bounce" in pick:
        cl = clips[pick["bounce"]]
        v = cl["video"].copy()
        v[24] = cl["background_rgb"]
        p = os.path.join(td, "drop.mp4")
        encode(p, v, cl["audio"])
        r = score(p, cl["caption"])
        check("eval one blank frame is not coherent", not r["coherent"], "; ".join(r["why"])[:80])
        check("eval one blank frame is one frame without an object",
              r["frames_without_object"] == 1, "%d" % r["frames_without_object"])
    # pure noise video
    rng = np.random.default_rng(1)
    v = rng.integers(0, 256, (49, SIZE, SIZE, 3), dtype=np.uint8)
    p = os.path.join(td, "noise.mp4")
    encode(p, v, rng.standard_normal(int(SECONDS * SR)).astype(np.float32) * 0.1)
    r = score(p, clips[0]["caption"])
    check("eval noise video is not coherent", not r["coherent"], "; ".join(r["why"])[:80])
    check("eval noise video has no object in any frame", r["frames_without_object"] == 49,
          "%d of 49" % r["frames_without_object"])
    check("eval noise video has no sync", r["sync_matched"] == 0, "%d/%d" % (r["sync_matched"], r["sync_expected"]))
    # smooth noise (blurred blobs) is not one object either
    k = np.ones(9) / 9
    v2 = rng.standard_normal((49, SIZE, SIZE, 3))
    for ax in (1, 2):
        v2 = np.apply_along_axis(lambda x: np.convolve(x, k, "same"), ax, v2)
    v2 = np.clip(128 + v2 * 400, 0, 255).astype(np.uint8)
    encode(p, v2, np.zeros(int(SECONDS * SR), np.float32))
    r = score(p, clips[0]["caption"])
    check("eval blurred noise video is not coherent", not r["coherent"], "; ".join(r["why"])[:80])
    # a still prompt with a moving object (and the reverse) is not coherent
    if "still" in pick and "bounce" in pick:
        r = score(os.path.join(td, "c%03d.mp4" % pick["bounce"]),
                  captions.caption(*[clips[pick["bounce"]]["attributes"][k] for k in captions.ATTRS[:3]],
                                   "still"))
        check("eval moving object for a still prompt is not coherent", not r["coherent"])
        r = score(os.path.join(td, "c%03d.mp4" % pick["still"]),
                  captions.caption(*[clips[pick["still"]]["attributes"][k] for k in captions.ATTRS[:3]],
                                   "bounce"))
        check("eval still object for a bounce prompt is not coherent", not r["coherent"])
    print("# t_eval: %.1f s" % (time.time() - t0))
    subprocess.run(["rm", "-rf", td])
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
