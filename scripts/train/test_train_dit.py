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
                 losses and gradients (float32, relative 1e-4), text drop and
                 frame conditioning included.

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
    return int(torch.load(os.path.join(out, "ckpt.pt"))["step"])


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
    out = sh([PY, td, "train", "--out", dit, "--steps", "3"] + small)
    losses = [float(m) for m in re.findall(r"video ([0-9.]+) \(avg", out)]
    if len(losses) != 3 or not all(0 < v < 10 for v in losses):
        return "train: video losses %s (want 3 finite ones)" % losses
    if ckpt_step(dit) != 3:
        return "checkpoint at step %d after 3 steps" % ckpt_step(dit)
    out = sh([PY, td, "train", "--out", dit, "--steps", "4", "--resume"] + small)
    if "resumed at step 3" not in out or ckpt_step(dit) != 4:
        return "resume: %s" % out[-300:]
    snap = os.path.join(TMP, "snap")
    sh([PY, os.path.join(HERE, "export_default.py"), "--train", train, "--snapshot", snap])
    cfg = open(os.path.join(snap, "reel-default.yaml")).read()
    if not re.search(r"(?m)^trained: true", cfg):
        return "snapshot config not marked trained: true"
    want = "latent_mean: [" + ", ".join("%.6f" % v for v in prep["latent_mean"]) + "]"
    if want not in cfg:
        return "snapshot config lacks the prepared latent_mean"
    rec = json.load(open(os.path.join(snap, "reel-default", "training.json")))
    if rec["dit"]["export"]["step"] != 4:
        return "training.json records step %s" % rec["dit"]["export"]["step"]
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
        a = types.SimpleNamespace(seed=0, batch=4, text_drop=0.5, shift=3.0, amp="off",
                                  audio_weight=1.0, given_weight=8.0, given_weight_from=0,
                                  fused_batch=fused)
        for v in P.values():
            v.grad = None
        losses = [train_dit.train_step(P, tc, tcfg, data, a, step) for step in (3, 4)]
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


def main():
    try:
        common.run_test(test_fused_batch, FAILS)
        common.run_test(test_dit_pipeline, FAILS)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
