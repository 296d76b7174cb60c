#!/usr/bin/python3
"""test_train_dit.py - the stage-4 path of the default model end to end, small:
the run of `make train-default` after the VAE and the audio codec, on 4 clips
and 3 steps, so a broken link shows in `make test` and not hours into a sitting.

  dit_pipeline   train_dit.py prepare (reel's C VAE encoder, the audio VAE,
                 `reel tokenize`; run again it resumes, and latents made from
                 other sources are remade) -> train (3 steps, checkpoint) -> resume to
                 step 4 -> export_default.py --snapshot (bf16 install, latent
                 statistics and `trained: true` in the snapshot's config,
                 training.json, and check_parity.py: reel's C engine reproduces
                 the trained fusion DiT) -> `reel render` with the snapshot, read
                 back by ffprobe (49 frames of 128x128 and the clip's 3.06 s of audio).

  fused_batch    train_step with --fused-batch (the batch in one forward,
                 make_golden_ovi.fusion_run_batch) gives the per-sample path's
                 losses and gradients (float32, relative 1e-4), text drop,
                 frame conditioning and a time crop included.

  time_crop      --time-crop: a prefix of a clip encodes, through reel's C
                 VAE, to the whole clip's first latent frames; the crop draw
                 and the cropped sample's shapes. The pipeline's resume with a
                 new cycle and crops leaves the first run's arguments in
                 training.json's history; bad --cycle-start / --crop-min /
                 --time-crop values stop with a message naming the option.
                 probe_dit.py on the checkpoint prints every figure, finite.

  object_weight  --fg-weight's loss weight: 1 on the background, 1 + W on
                 the object.

The VAE and audio codec are `reel init-weights`' seeded random weights for
the default config (the stages that train them have their own tests).
Prints ok/FAIL lines; run by tests/t_train.sh.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "synth"))
import make_dataset as md  # noqa: E402

PY = sys.executable
REEL = common.REEL_BIN
TMP = tempfile.mkdtemp(prefix="reel-train-dit-test-")
FAILS = []


def sh(cmd, **kw):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd[:3]), r.returncode, r.stdout[-1500:]))
    return r.stdout


def random_stage_dirs(train):
    """train/vae and train/audio as stages 1 and 2 leave them, from init-weights."""
    w = common.random_default_model(os.path.join(TMP, "ref"))
    for stage, files in (("vae", ["vae.safetensors"]),
                         ("audio", ["audio_vae.safetensors", "vocoder.safetensors"])):
        os.makedirs(os.path.join(train, stage), exist_ok=True)
        for f in files:
            shutil.copy(os.path.join(w, f), os.path.join(train, stage, f))
        common.write_json_atomic(os.path.join(train, stage, "stats.json"), {"from": "init-weights"})


def ckpt_step(out):
    import torch
    return int(common.load_checkpoint(out)["step"])


def test_dit_pipeline():
    for tool in (REEL, common.VAE_TOOL):
        if not os.access(tool, os.X_OK):
            return "no %s (build first)" % tool
    train = os.path.join(TMP, "train")
    random_stage_dirs(train)
    dit = os.path.join(train, "dit")
    td = os.path.join(HERE, "train_dit.py")
    sh([PY, td, "prepare", "--out", dit, "--vae", os.path.join(train, "vae"),
        "--audio", os.path.join(train, "audio"), "--n-train", "4", "--n-cond", "2", "--threads", "1"])
    prep = json.load(open(os.path.join(dit, "prep.json")))
    if prep["clips"] != 4 or len(prep["latent_mean"]) != 16 or len(prep["latent_std"]) != 16:
        return "prep.json: %d clips, %d means, %d stds (want 4, 16, 16)" % (
            prep["clips"], len(prep["latent_mean"]), len(prep["latent_std"]))
    if not all(s > 0 for s in prep["latent_std"]):
        return "prep.json: a latent channel with std 0: %s" % prep["latent_std"]
    # prepare again: the same sources resume (nothing redone); another
    # conditioning count makes the video latents stale (removed and remade),
    # the audio latents stay
    prep_args = [PY, td, "prepare", "--out", dit, "--vae", os.path.join(train, "vae"),
                 "--audio", os.path.join(train, "audio"), "--n-train", "4", "--threads", "1"]
    mt = {f: os.path.getmtime(os.path.join(dit, f)) for f in os.listdir(dit)
          if f.startswith(("video-", "audio-"))}
    out = sh(prep_args + ["--n-cond", "2"])
    if "removed" in out or "video shard" in out or "audio shard" in out:
        return "prepare with the same sources redid work: %s" % out[-300:]
    out = sh(prep_args + ["--n-cond", "1"])
    if "video files made from other weights or clips - removed" not in out or "audio shard" in out:
        return "prepare with another --n-cond: %s" % out[-300:]
    for f, t in mt.items():
        now = os.path.getmtime(os.path.join(dit, f))
        if (now != t) != f.startswith("video-"):
            return "prepare with another --n-cond: %s %s" % (f, "kept" if now == t else "remade")
    sh(prep_args + ["--n-cond", "2"])
    small = ["--batch", "2", "--warmup", "2", "--threads", "1", "--save-every", "2", "--log-every", "1"]
    out = sh([PY, td, "train", "--out", dit, "--steps", "4", "--stop-at", "3"] + small)
    losses = [float(m) for m in re.findall(r"video ([0-9.]+) \(avg", out)]
    if len(losses) != 3 or not all(0 < v < 10 for v in losses):
        return "train: video losses %s (want 3 finite ones)" % losses
    if ckpt_step(dit) != 3:
        return "checkpoint at step %d after 3 steps" % ckpt_step(dit)
    # resumed with other arguments (a new cycle with time crops): the record
    # keeps the first run's, to the step they ran to
    out = sh([PY, td, "train", "--out", dit, "--steps", "4", "--resume", "--cycle-start", "3",
              "--time-crop", "1", "--crop-min", "20"] + small)
    if "resumed at step 3" not in out or ckpt_step(dit) != 4:
        return "resume: %s" % out[-300:]
    # bad schedule / crop arguments: a clear error, the checkpoint untouched
    for bad, want in ((["--steps", "8", "--cycle-start", "6"], "--cycle-start 6 is past"),
                      (["--steps", "8", "--time-crop", "1", "--crop-min", "25"], "--crop-min 25"),
                      (["--steps", "8", "--time-crop", "1.5"], "--time-crop 1.5"),
                      (["--steps", "8", "--cycle-start", "8"], "--cycle-start 8")):
        r = subprocess.run([PY, td, "train", "--out", dit, "--resume"] + bad + small,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode == 0 or want not in r.stdout or ckpt_step(dit) != 4:
            return "train %s: exit %d, %r, checkpoint at step %d" % (
                " ".join(bad), r.returncode, r.stdout[-200:], ckpt_step(dit))
    # probe_dit on this checkpoint: every line, with finite figures (4 steps
    # from Wan's zero-initialised head leave the text effects under the
    # printed 0.001, so only the x0 error must be positive)
    out = sh([PY, os.path.join(HERE, "probe_dit.py"), "--out", dit, "--clips", "2",
              "--sigmas", "0.5,1.0", "--threads", "1", "--reel", REEL])
    if "probe: step 4, 2 clips" not in out:
        return "probe_dit: %s" % out[-300:]
    figs = {m[0]: [float(v) for v in re.findall(r"s=[0-9.]+:([-0-9.e+naif]+)", m[1])]
            for m in re.findall(r"probe: (x0_mse|text_effect \w+) +(.*)", out)}
    want = ["x0_mse"] + ["text_effect " + w for w in ("colour", "shape", "motion", "none")]
    if sorted(figs) != sorted(want) or any(len(v) != 2 or not all(0 <= x < 100 for x in v)
                                           for v in figs.values()) or min(figs["x0_mse"]) <= 0:
        return "probe_dit figures: %s" % figs
    snap = os.path.join(TMP, "snap")
    sh([PY, os.path.join(HERE, "export_default.py"), "--train", train, "--snapshot", snap])
    cfg = open(os.path.join(snap, "reel-default.yaml")).read()
    if not re.search(r"(?m)^trained: true", cfg):
        return "snapshot config not marked trained: true"
    want = "latent_mean: [" + ", ".join("%.6f" % v for v in prep["latent_mean"]) + "]"
    if want not in cfg:
        return "snapshot config lacks the prepared latent_mean"
    rec = json.load(open(os.path.join(snap, "reel-default", "training.json")))
    ex = rec["dit"]["export"]
    src = rec["dit"].get("prep_source", {}).get("video", {})
    if src.get("data_version") != md.VERSION or src.get("vae_stage") != "vae":
        return "training.json's prep_source: %s" % rec["dit"].get("prep_source")
    if ex["step"] != 4:
        return "training.json records step %s" % ex["step"]
    hist = ex.get("history", [])
    if [h["until_step"] for h in hist] != [3] or hist[0]["args"].get("time_crop", 0) != 0 \
            or ex["args"]["time_crop"] != 1 or ex["args"]["cycle_start"] != 3:
        return "training.json's arguments: %s, history %s" % (ex["args"], hist)
    mp4 = os.path.join(TMP, "clip.mp4")
    job = os.path.join(TMP, "job.yaml")
    with open(job, "w") as f:
        f.write("version: 1\nprompt: a red circle bounces off the walls on a dark blue background\n"
                "seed: 1\noutput:\n  path: clip.mp4\n")
    sh([REEL, "render", job, "--set", "model=" + os.path.join(snap, "reel-default.yaml"),
        "--set", "sampler.steps=2"])
    probe = json.loads(sh(["ffprobe", "-v", "error", "-count_frames", "-show_streams", "-of", "json",
                           mp4]))
    v = [s for s in probe["streams"] if s["codec_type"] == "video"]
    a = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    if len(v) != 1 or (v[0]["width"], v[0]["height"], v[0]["nb_read_frames"]) != (128, 128, "49"):
        return "rendered video stream: %s" % [(s["width"], s["height"], s["nb_read_frames"]) for s in v]
    if len(a) != 1 or abs(float(a[0]["duration"]) - 49 / 16) > 0.1:
        return "rendered audio stream: %s s (want one of ~%.2f s)" % (
            [s.get("duration") for s in a], 49 / 16)
    return None


class FakeData:
    """train_dit.Data's sampling over random latents: 6 clips, the default
    model's shapes, every frame-conditioning pattern reachable."""

    def __init__(self, train_dit, rng):
        import numpy as np
        F_lat, S = 25, 2
        self.td, self.n, self.t_stride = train_dit, 6, S
        self.lat = rng.standard_normal((6, 16, F_lat, 16, 16)).astype(np.float32)
        self.cond = rng.standard_normal((6, 3, 16, F_lat, 16, 16)).astype(np.float16)
        self.cond_idx = np.arange(6)
        self.masks = np.zeros((6, 3, 49), np.uint8)
        self.masks[:, 0, 0] = 1
        self.masks[:, 1, [0, 48]] = 1
        self.masks[:, 2, [0, 17, 30]] = 1
        self.audio = rng.standard_normal((6, 95, 8)).astype(np.float32)
        self.combo = np.arange(6)
        self.null_cond = np.zeros((16, F_lat, 16, 16), np.float32)
        self.mean, self.std = np.float32(0), np.float32(1)
        self.ids = [[1]] + [[5 + i, 9 + i, 1] for i in range(6)]
        self.by_combo = {str(i): [1 + i] for i in range(6)}

    def norm(self, v):
        return v

    def sample(self, rng, p_drop):
        return self.td.Data.sample(self, rng, p_drop)


def test_fused_batch():
    import types
    import numpy as np
    import torch
    import train_dit
    mc = common.load_model_config(os.path.join(common.REPO, "configs", "reel-default.yaml"))
    tc, tcfg = train_dit.tower_cfgs(mc), train_dit.umt5_cfg(mc)
    P = train_dit.init_params(mc, 0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():   # off the zero-initialised heads, so every gradient is live
        for v in P.values():
            v.add_(0.05 * torch.randn(v.shape, generator=g))
    data = FakeData(train_dit, np.random.default_rng(0))
    res = []
    for fused in (False, True):
        # step 3 whole clips, step 4 a time crop (step 4's draw gives one)
        a = types.SimpleNamespace(seed=0, batch=4, text_drop=0.5, shift=3.0, amp="off",
                                  audio_weight=1.0, given_weight=8.0, given_weight_from=0,
                                  fused_batch=fused, time_crop=0.0, crop_min=7, fg_weight=4.0)
        for v in P.values():
            v.grad = None
        losses = [train_dit.train_step(P, tc, tcfg, data, a, 3)]
        a.time_crop = 1.0
        losses.append(train_dit.train_step(P, tc, tcfg, data, a, 4))
        res.append((losses, {k: v.grad.clone() for k, v in P.items() if v.grad is not None}))
    (l0, g0), (l1, g1) = res
    if any(abs(x - y) > 1e-5 * abs(x) for p, q in zip(l0, l1) for x, y in zip(p, q)):
        return "losses differ: per sample %s, fused %s" % (l0, l1)
    if sorted(g0) != sorted(g1) or len(g0) != len(P):
        return "gradients of %d / %d of %d tensors" % (len(g0), len(g1), len(P))
    worst = max(float((g0[k] - g1[k]).abs().max()) / (float(g0[k].abs().max()) + 1e-30) for k in g0)
    if worst > 1e-4:
        return "gradients differ: worst relative %.2e" % worst
    return None


def test_time_crop():
    """The premise of --time-crop (the causal VAE's first k latent frames are
    the encoding of the clip's first S(k-1)+1 frames, reel's C encoder on
    random weights), the draw (none at --time-crop 0, k in range and the batch
    scaled at 1) and the cropped sample's shapes."""
    import types
    import numpy as np
    import train_dit
    if not os.access(common.VAE_TOOL, os.X_OK):
        return "no %s (build first)" % common.VAE_TOOL
    w = common.random_default_model(os.path.join(TMP, "crop"))
    vcfg = common.vae_cfg(common.load_model_config(os.path.join(common.REPO, "configs",
                                                                "reel-default.yaml")))
    rng = np.random.default_rng(5)
    clip = np.tanh(rng.standard_normal((1, 3, 17, 32, 32))).astype(np.float32)
    vae = os.path.join(w, "vae.safetensors")
    full = common.c_vae(vcfg, vae, clip, 1)[0]
    S = (17 - 1) // (full.shape[2] - 1)
    # the encoder takes frame 0 and then whole chunks of 2S frames, so a clip
    # of 2S m + 1 frames is one it can encode on its own; any prefix's
    # latents hold no later frame: frames after S (k - 1) change latents k..
    # only (here k = 4)
    pre = common.c_vae(vcfg, vae, clip[:, :, :2 * S + 1], 1)[0]
    alt = clip.copy()
    alt[:, :, 3 * S + 1:] = np.tanh(rng.standard_normal(alt[:, :, 3 * S + 1:].shape))
    moved = common.c_vae(vcfg, vae, alt, 1)[0]
    scale = float(np.abs(full).max())
    if pre.shape[2] != 3:
        return "the %d-frame prefix encodes to %d latent frames (want 3)" % (2 * S + 1, pre.shape[2])
    err = [float(np.abs(pre - full[:, :, :3]).max()) / scale,
           float(np.abs(moved[:, :, :4] - full[:, :, :4]).max()) / scale]
    if max(err) > 1e-4:
        return "prefix latents differ from the whole clip's: relative %.2e (3-frame prefix), " \
               "%.2e (frames after %d changed)" % (err[0], err[1], 3 * S)
    if float(np.abs(moved[:, :, 4] - full[:, :, 4]).max()) < 1e-3 * scale:
        return "changing frames %d.. left latent frame 4 as it was" % (3 * S + 1)
    a = types.SimpleNamespace(time_crop=0.0, crop_min=7, batch=4)
    r0, r1 = np.random.default_rng(1), np.random.default_rng(1)
    if train_dit.time_crop(a, r0, 25) != (25, 4) or r0.random() != r1.random():
        return "--time-crop 0 cropped or drew from the step's generator"
    a.time_crop = 1.0
    ks = [train_dit.time_crop(a, np.random.default_rng(i), 25) for i in range(200)]
    if not all(7 <= kk < 25 and b == round(4 * 25 / kk) for kk, b in ks) or \
            {kk for kk, _ in ks} != set(range(7, 25)):
        return "time crops %s (want every k in 7..24, batch round(4 x 25 / k))" % sorted(set(ks))
    x0, cond, mask, aud = (np.zeros((16, 25, 4, 4)), np.zeros((16, 25, 4, 4)),
                           np.zeros((2, 25)), np.zeros((95, 8)))
    got = [v.shape for v in train_dit.crop_sample(x0, cond, mask, aud, 13, 25)]
    if got != [(16, 13, 4, 4), (16, 13, 4, 4), (2, 13), (48, 8)]:
        return "crop_sample to 13 latent frames: %s" % got
    return None


def test_object_weight():
    """--fg-weight: 1 on a frame's background, 1 + W on an object that stands
    out from it, whatever the background's own value per channel."""
    import torch
    import train_dit
    x0 = torch.randn(16, 1, 1, 1).expand(16, 3, 16, 16).clone()
    x0[:, :, 4:9, 6:11] += 3.0 * torch.sign(torch.randn(16, 1, 1, 1))
    w = train_dit.object_weight(x0, 4.0)
    inside = torch.zeros(3, 16, 16, dtype=torch.bool)
    inside[:, 4:9, 6:11] = True
    if w.shape != (3, 16, 16) or float((w[~inside] - 1).abs().max()) > 1e-6 or \
            float((w[inside] - 5).abs().max()) > 1e-6:
        return "object_weight: background %s, object %s (want 1 and 5)" % (
            sorted({round(float(v), 3) for v in w[~inside]}),
            sorted({round(float(v), 3) for v in w[inside]}))
    return None


def main():
    try:
        common.run_test(test_object_weight, FAILS)
        common.run_test(test_time_crop, FAILS)
        common.run_test(test_fused_batch, FAILS)
        common.run_test(test_dit_pipeline, FAILS)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
