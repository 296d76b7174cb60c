#!/usr/bin/python3
"""train_dit.py - stage 4 of the default model: the joint video + audio DiT
(Ovi-style fusion of a Wan video tower and a Wan t2a audio tower) together
with the small umT5 text encoder, on latents of the frozen stage-1 VAE and
stage-2 audio codec.

    train_dit.py prepare --out DIR --vae VAE_DIR --audio AUDIO_DIR [--n-train 1024]
                         [--video-only | --audio-only]
    train_dit.py train   --out DIR [--steps 10000] [--resume] [--threads 2] [--amp bf16|off]
    train_dit.py export  --out DIR --to configs/reel-default [--dtype bf16]

The networks are make_golden_ovi.Tower (fusion) and bench_umt5_torch.encode
(umT5): the PyTorch modules proven against the official golden files, the
same math reel's C engine runs, with parameters under the reference names.

prepare: generates the training clips (scripts/synth, 49 frames = 3.0625 s
at 16 fps, 128x128, seed 11) and encodes them once: the video latent (z = mu
of the Wan2.1 VAE), the audio latent (the mel VAE's mu, 95 x 8), and for the
frame-conditioning the VAE encoding of three masked copies of the clip
(first frame; first + last frame; 2-4 random keyframes) - the "condition
video" of reel's `cond` stage: the given frames in place, 0 elsewhere. A
zero condition video (plain text-to-video) is encoded once. The captions'
token ids come from reel's own tokenizer (`reel tokenize --eos`), so training
sees exactly the ids reel feeds the encoder.

train: flow matching as Wan/Ovi sample it: x_t = (1 - s) x0 + s eps, the
model predicts eps - x0 at timestep 1000 s; s is drawn uniformly then
shifted (--shift 3) towards noise. Video tower input = [x_t | mask(S), S the
VAE's temporal stride | cond latent] (Wan i2v channel concat); the pattern of a sample
is none / first / first+last / keyframes with probabilities 0.4/0.25/0.2/0.15.
The caption is one of the grammar's phrasings of the clip's attributes,
replaced by "" 10 % of the time (classifier-free guidance). Loss = MSE
video + MSE audio; from step --given-weight-from on, the latent frames that
hold a given frame weigh --given-weight in the video term (the model had
learned to copy the condition only loosely: their x0 error matched the free
frames'). AdamW, warm-up then cosine; EMA of the weights is what
is exported. The matmuls run under bf16 autocast (--amp; gradients agree
with f32 to cosine 0.9999) with OpenBLAS held to one thread beside torch's
own (common.set_blas_threads). Every random draw of step s depends only on (seed, s), and
the checkpoint (common.Checkpointer) holds params, EMA, optimizer state.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import REPO  # noqa: E402
import make_golden as mg  # noqa: E402
import make_golden_ovi as mo  # noqa: E402
import bench_umt5_torch as ut  # noqa: E402

sys.path.insert(0, os.path.join(REPO, "scripts", "synth"))
import captions  # noqa: E402
import make_dataset as md  # noqa: E402,F401

FRAMES, FPS, SIZE, SECONDS = 49, 16, 128, 3.0625
PATTERNS = ("first", "first_last", "keyframes")
P_PATTERN = {"none": 0.40, "first": 0.25, "first_last": 0.20, "keyframes": 0.15}
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


# ----------------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------------
def tower_cfgs(mc):
    d = mc["dit"]
    a = mc["audio"]["dit"]
    shared = dict(dim=d["dim"], ffn_dim=d["ffn_dim"], freq_dim=d["freq_dim"],
                  num_heads=d["num_heads"], num_layers=d["num_layers"],
                  text_dim=d["text_dim"], text_len=d["text_len"])
    video = mo.tower_cfg("ti2v", in_dim=d["in_dim"], out_dim=d["out_dim"],
                         patch_size=list(d["patch_size"]), **shared)
    audio = mo.tower_cfg("t2a", in_dim=a["in_dim"], out_dim=a["out_dim"], patch_size=[1],
                         temporal_rope_scaling_factor=a["rope_scale"], **dict(
                             shared, ffn_dim=a["ffn_dim"], freq_dim=a["freq_dim"]))
    return {"video": video, "audio": audio}


def umt5_cfg(mc):
    t = mc["text_encoder"]
    return {k: t[k] for k in ("vocab", "dim", "dim_attn", "dim_ffn", "num_heads", "num_layers",
                              "num_buckets", "shared_pos", "text_len")}


def umt5_param_specs(c):
    """(name, shape, init) in the order reel's tensor table lists them."""
    d, da, df, h = c["dim"], c["dim_attn"], c["dim_ffn"], c["num_heads"]
    s = [("token_embedding.weight", [c["vocab"], d], ("normal", 1.0))]
    if c["shared_pos"]:
        s.append(("pos_embedding.embedding.weight", [c["num_buckets"], h], ("normal", 0.1)))
    for i in range(c["num_layers"]):
        p = "blocks.%d." % i
        s += [(p + "norm1.weight", [d], "ones"),
              (p + "attn.q.weight", [da, d], ("normal", (d * (da // h)) ** -0.5)),
              (p + "attn.k.weight", [da, d], ("normal", d ** -0.5)),
              (p + "attn.v.weight", [da, d], ("normal", d ** -0.5)),
              (p + "attn.o.weight", [d, da], ("normal", da ** -0.5)),
              (p + "norm2.weight", [d], "ones"),
              (p + "ffn.gate.0.weight", [df, d], ("normal", d ** -0.5)),
              (p + "ffn.fc1.weight", [df, d], ("normal", d ** -0.5)),
              (p + "ffn.fc2.weight", [d, df], ("normal", df ** -0.5))]
        if not c["shared_pos"]:
            s.append((p + "pos_embedding.embedding.weight", [c["num_buckets"], h], ("normal", 0.1)))
    s.append(("norm.weight", [d], "ones"))
    return s


def init_params(mc, seed):
    """Leaf tensors under the exported names: fusion (video_model.*, audio_model.*)
    and text (text.*). Wan's own init: xavier linears, zero biases and head,
    N(0, 1/dim) modulation, N(0, 0.02) embeddings MLPs."""
    rng = np.random.default_rng(seed)
    tc = tower_cfgs(mc)
    specs = [("video_model." + n, s, i) for n, s, i in mo.ovi_param_specs(tc["video"], False)]
    specs += [("audio_model." + n, s, i) for n, s, i in mo.ovi_param_specs(tc["audio"], True)]
    specs += [("text." + n, s, i) for n, s, i in umt5_param_specs(umt5_cfg(mc))]
    P = OrderedDict()
    for name, shape, init in specs:
        w = mg.init_values(rng, shape, init)
        P[name] = torch.tensor(w.reshape(shape), dtype=torch.float32, requires_grad=True)
    return P


# ----------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------
def text_encode(P, tcfg, ids):
    W = {k[5:]: v for k, v in P.items() if k.startswith("text.")}
    return ut.encode(W, tcfg, torch.as_tensor(ids, dtype=torch.long))


def fusion(P, tc, vid_in, aud_in, t, ctx):
    """One sample: vid_in [Cin, F, H, W], aud_in [L, Ca], t scalar tensor, ctx [L, text_dim]
    -> (video [Cout, F, H, W], audio [L, Ca]): make_golden_ovi.fusion_run, the forward
    that --verify proves against the official golden files."""
    pt, ph, pw = tc["video"]["patch_size"]
    nv = (vid_in.shape[1] // pt) * (vid_in.shape[2] // ph) * (vid_in.shape[3] // pw)
    return mo.fusion_run(P, tc, vid_in, t, ctx, nv, aud_in, ctx, aud_in.shape[0])


def fusion_batch(P, tc, vid_in, aud_in, t, ctxs):
    """A batch in one forward: vid_in [B, Cin, F, H, W], aud_in [B, L, Ca], t [B],
    ctxs B tensors [Lc, text_dim] -> (video [B, Cout, F, H, W], audio [B, L, Ca]):
    make_golden_ovi.fusion_run_batch (fusion_run is its B = 1 case). One
    forward for the batch spends PyTorch's per-op cost once, not B times."""
    pt, ph, pw = tc["video"]["patch_size"]
    nv = (vid_in.shape[2] // pt) * (vid_in.shape[3] // ph) * (vid_in.shape[4] // pw)
    return mo.fusion_run_batch(P, tc, vid_in, t, ctxs, nv, aud_in, ctxs, aud_in.shape[1])


def frame_mask_channels(m, stride):
    """Per-video-frame mask [F] -> the Wan i2v mask [S, F_lat], S = stride (the
    VAE's temporal stride, video frames per latent frame): frame 0 repeated S
    times, then frames 1.. in groups of S (reel's cond stage builds the same)."""
    m = np.asarray(m, np.float32)
    seq = np.concatenate([np.repeat(m[:1], stride), m[1:]])
    return seq.reshape(-1, stride).T.copy()


# ----------------------------------------------------------------------------
# prepare
# ----------------------------------------------------------------------------
def keyframe_pattern(rng):
    k = int(rng.integers(2, 5))
    return sorted(rng.choice(FRAMES, size=k, replace=False).tolist())


def pattern_frames(name, rng):
    if name == "first":
        return [0]
    if name == "first_last":
        return [0, FRAMES - 1]
    return keyframe_pattern(rng)


def tokenize(reel, tokenizer, lines):
    r = subprocess.run([reel, "tokenize", "--model", tokenizer, "--eos"],
                       input="\n".join(lines) + "\n", capture_output=True, text=True, check=True)
    out = [[int(x) for x in l.split()] for l in r.stdout.splitlines()]
    assert len(out) == len(lines), (len(out), len(lines))
    return out


def all_captions():
    """Every phrasing of every training combination, and the index of each
    combination's phrasings: {combo: [caption indices]}."""
    lines, by_combo = [""], {}
    for combo in captions.split_combos("train"):
        idx = []
        for tpl in range(len(captions.TEMPLATES)):
            for ph in range(len(captions.MOTION_PHRASES[combo[3]])):
                idx.append(len(lines))
                lines.append(captions.caption(*combo, template=tpl, phrase=ph))
        by_combo[tuple(combo)] = idx
    return lines, by_combo


def c_vae_encode(a, vcfg, videos):
    """videos float32 [N, 3, T, H, W] in [-1, 1] -> raw mu [N, z, T', H/8, W/8] through
    reel's own C encoder (common.c_vae: the latents reel computes, and much
    faster than PyTorch's CPU conv3d; `prepare` prints its s/clip)."""
    return common.c_vae(vcfg, a.vae_weights, videos, a.threads, tool=a.encoder)[0]


def cmd_prepare(a):
    """Two passes, each resumable shard by shard: the video latents (needs only
    stage 1, so it can run while the audio codec trains) and the audio latents
    (stage 2). Either pass is skipped with --video-only / --audio-only."""
    common.setup_torch(a.threads, a.seed)
    import make_dataset as md
    os.makedirs(a.out, exist_ok=True)
    data = a.data or os.path.join(a.out, "data")
    common.ensure_dataset(data, a.n_train, a.data_seed, "train", size=SIZE, fps=FPS,
                          seconds=SECONDS)
    mc = common.load_model_config(a.config)
    lines, by_combo = all_captions()
    ids = tokenize(a.reel, a.tokenizer, lines)
    common.write_json_atomic(os.path.join(a.out, "captions.json"),
                             {"lines": lines, "ids": ids,
                              "by_combo": {"|".join(k): v for k, v in by_combo.items()}})
    shards = common.list_shards(data)
    check_prep_source(a, md)
    if not a.audio_only:
        prepare_video(a, mc, md, shards)
    if not a.video_only:
        prepare_audio(a, mc, md, shards)
    files = shard_files(a.out)
    if len(files) == len(shards) and all(os.path.exists(au) for _, au in files):
        write_prep_stats(a)


def check_prep_source(a, md):
    """Latents made from other weights or clips (a retrained VAE, a new
    generator version) are removed, not resumed: prepare's shard-by-shard
    resume would otherwise mix them with the new ones. prep_source.json
    records, per pass, the frozen weights' SHA-256 and the clips' generator
    version, seed and counts."""
    path = os.path.join(a.out, "prep_source.json")
    clips = {"data_version": md.VERSION, "data_seed": a.data_seed, "n_train": a.n_train}
    want = {}
    if not a.audio_only:
        # vae_stage: the training directory's VAE stage the latents come
        # from (vae2x for reel-default); export_default
        # ships that one, so the DiT decodes through the VAE it learnt on
        want["video"] = dict(clips, vae=common.file_sha256(os.path.join(a.vae, "vae.safetensors")),
                             vae_stage=os.path.basename(os.path.normpath(a.vae)),
                             n_cond=a.n_cond, seed=a.seed)
    if not a.video_only:
        want["audio"] = dict(clips, audio_vae=common.file_sha256(os.path.join(a.audio, "audio_vae.safetensors")))
    have = {}
    if os.path.exists(path):
        with open(path) as f:
            have = json.load(f)
    for kind, src in want.items():
        if have.get(kind) == src:
            continue
        stale = [f for f in os.listdir(a.out) if f.startswith(kind + "-") or f == "prep.json"
                 or (kind == "video" and f == "null_cond.npy")]
        if stale:
            print("prepare: %d %s files made from other weights or clips - removed" % (
                len(stale), kind), flush=True)
        for f in stale:
            os.remove(os.path.join(a.out, f))
        have[kind] = src
    common.write_json_atomic(path, have)


def prepare_video(a, mc, md, shards):
    vcfg = common.vae_cfg(mc)
    a.vae_weights = os.path.join(a.vae, "vae.safetensors")
    null_path = os.path.join(a.out, "null_cond.npy")
    if not os.path.exists(null_path):
        # zero condition video (plain text-to-video)
        np.save(null_path, c_vae_encode(a, vcfg, np.zeros((1, 3, FRAMES, SIZE, SIZE), np.float32))[0])
    t0, done, first = time.time(), 0, 0
    for si, path in enumerate(shards):
        dst = os.path.join(a.out, "video-%05d.npz" % si)
        d = md.load_shard(path)
        n = d["video"].shape[0]
        if os.path.exists(dst):
            first += n
            continue
        vals = d["meta"]["values"]
        combos = ["|".join(vals[k][int(d["attrs"][i, j])] for j, k in enumerate(d["meta"]["attrs"]))
                  for i in range(n)]
        x = (d["video"][:, :FRAMES].astype(np.float32) / 127.5 - 1.0).transpose(0, 4, 1, 2, 3)
        lat = np.concatenate([c_vae_encode(a, vcfg, x[k:k + 8]) for k in range(0, n, 8)])
        # frame-conditioning variants for the first --n-cond clips
        masks = np.zeros((n, len(PATTERNS), FRAMES), np.uint8)
        has_cond = np.array([first + i < a.n_cond for i in range(n)])
        cond = np.zeros((n, len(PATTERNS)) + lat.shape[1:], np.float32)
        todo = []
        for i in np.nonzero(has_cond)[0]:
            rng = np.random.default_rng([a.seed, si, int(i)])
            for pi, pname in enumerate(PATTERNS):
                fr = pattern_frames(pname, rng)
                masks[i, pi, fr] = 1
                xc = np.zeros_like(x[i])
                xc[:, fr] = x[i][:, fr]
                todo.append((i, pi, xc))
        for k in range(0, len(todo), 8):
            part = todo[k:k + 8]
            mu = c_vae_encode(a, vcfg, np.stack([p[2] for p in part]))
            for (i, pi, _), m in zip(part, mu):
                cond[i, pi] = m
        tmp = dst + ".tmp.npz"
        np.savez(tmp, lat=lat.astype(np.float16), cond=cond.astype(np.float16), masks=masks,
                 has_cond=has_cond, combo=np.array(combos))
        os.replace(tmp, dst)
        done += n
        first += n
        print("video shard %d/%d: %d clips (%d with conditioning), %.1f s/clip" % (
            si + 1, len(shards), n, int(has_cond.sum()), (time.time() - t0) / done), flush=True)


def prepare_audio(a, mc, md, shards):
    import train_audio as ta
    sec = mc["audio"]["vae"]
    W, _ = common.st_load(os.path.join(a.audio, "audio_vae.safetensors"), torch.float32)
    for si, path in enumerate(shards):
        dst = os.path.join(a.out, "audio-%05d.npy" % si)
        if os.path.exists(dst):
            continue
        d = md.load_shard(path)
        aud = np.stack([ta.encode_audio(W, sec, d["audio"][i][:int(round(SECONDS * 16000))])
                        for i in range(d["audio"].shape[0])]).astype(np.float32)
        np.save(dst + ".tmp.npy", aud)
        os.replace(dst + ".tmp.npy", dst)
        print("audio shard %d/%d" % (si + 1, len(shards)), flush=True)


def shard_files(out):
    vids = sorted(f for f in os.listdir(out) if f.startswith("video-") and f.endswith(".npz"))
    return [(os.path.join(out, v), os.path.join(out, v.replace("video-", "audio-")
                                                 .replace(".npz", ".npy"))) for v in vids]


def write_prep_stats(a):
    L = np.concatenate([np.load(v)["lat"].astype(np.float32) for v, _ in shard_files(a.out)])
    A = np.concatenate([np.load(au) for _, au in shard_files(a.out)])
    stats = {"latent_mean": L.mean(axis=(0, 2, 3, 4)).tolist(),
             "latent_std": L.std(axis=(0, 2, 3, 4)).tolist(),
             "audio_mean": A.mean(axis=(0, 1)).tolist(), "audio_std": A.std(axis=(0, 1)).tolist(),
             "clips": int(L.shape[0]), "data_seed": a.data_seed, "n_train": a.n_train,
             "n_cond": a.n_cond, "frames": FRAMES, "fps": FPS, "size": SIZE}
    common.write_json_atomic(os.path.join(a.out, "prep.json"), stats)
    print("prepared %d clips: video latent mean %s std %s; audio mean %s std %s" % (
        L.shape[0], np.round(stats["latent_mean"], 3), np.round(stats["latent_std"], 3),
        np.round(stats["audio_mean"], 3), np.round(stats["audio_std"], 3)))


# ----------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------
def latent_norm(out):
    """prepare's per-channel video latent mean and std, [z, 1, 1, 1] each:
    the model trains on (latent - mean) / std."""
    prep = json.load(open(os.path.join(out, "prep.json")))
    return tuple(np.array(prep[k], np.float32).reshape(-1, 1, 1, 1)
                 for k in ("latent_mean", "latent_std"))


class Data:
    def __init__(self, out):
        files = shard_files(out)
        parts = [dict(np.load(v)) for v, _ in files]
        self.lat = np.concatenate([p["lat"] for p in parts]).astype(np.float32)
        self.cond = np.concatenate([p["cond"] for p in parts])
        self.cond_idx = np.nonzero(np.concatenate([p["has_cond"] for p in parts]))[0]
        self.masks = np.concatenate([p["masks"] for p in parts])
        self.audio = np.concatenate([np.load(au) for _, au in files])
        self.combo = np.concatenate([p["combo"] for p in parts])
        self.null_cond = np.load(os.path.join(out, "null_cond.npy"))
        self.mean, self.std = latent_norm(out)
        caps = json.load(open(os.path.join(out, "captions.json")))
        self.ids = caps["ids"]
        self.by_combo = caps["by_combo"]
        self.n = self.lat.shape[0]
        self.t_stride = (FRAMES - 1) // (self.lat.shape[2] - 1)

    def norm(self, v):
        return (v - self.mean) / self.std

    def sample(self, rng, p_drop):
        u = rng.random()
        i = int(rng.integers(self.n)) if u < P_PATTERN["none"] else \
            int(self.cond_idx[int(rng.integers(len(self.cond_idx)))])
        acc, pat = 0.0, "none"
        for k, p in P_PATTERN.items():
            acc += p
            if u < acc:
                pat = k
                break
        if pat == "none":
            m = np.zeros(FRAMES, np.float32)
            cond = self.null_cond
        else:
            pi = PATTERNS.index(pat)
            m = self.masks[i, pi].astype(np.float32)
            cond = self.cond[i, pi].astype(np.float32)
        if rng.random() < p_drop:
            ids = self.ids[0]
        else:
            choices = self.by_combo[str(self.combo[i])]
            ids = self.ids[choices[int(rng.integers(len(choices)))]]
        return (self.norm(self.lat[i]), self.norm(cond), frame_mask_channels(m, self.t_stride),
                self.audio[i], ids, pat)


def lr_at(a, step):
    """Warm-up then cosine to 0.1 lr over [cycle_start, steps): a later
    --cycle-start begins a new cycle on a resumed run (its own warm-up)."""
    step, steps = step - a.cycle_start, a.steps - a.cycle_start
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    p = (step - a.warmup) / max(1, steps - a.warmup)
    return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def time_crop(a, rng, f_lat):
    """-> (latent frames, batch) of this step. With probability --time-crop
    the step trains on the first k latent frames of its clips (k uniform in
    [--crop-min, F_lat - 1]) and takes batch x F_lat / k clips, so a step
    holds about as many tokens and attention costs less. The prefix is exact
    for the causal VAE: latent frames 0..k-1 are the encoding of video frames
    0..S(k-1) alone, and the same holds for the condition video and its mask.
    No draw is made at --time-crop 0, so older runs replay step for step."""
    if a.time_crop <= 0 or rng.random() >= a.time_crop:
        return f_lat, a.batch
    k = int(rng.integers(a.crop_min, f_lat))
    return k, max(1, int(round(a.batch * f_lat / k)))


def object_weight(x0, fg_weight, scale=2.0):
    """[F, H, W] loss weight 1 + fg_weight * min(1, d / scale), d the RMS over
    channels of the latent's distance from its frame's per-channel median
    (the background: the object covers a small part of a frame). Why: the
    shape of the object lives in a few latent pixels, so in the plain MSE
    the caption's shape word is worth almost nothing - at step 13 300 the
    x0 prediction did not change when the caption named another shape
    (probe_dit.py)."""
    bg = x0.flatten(2).median(dim=2).values[:, :, None, None]
    d = ((x0 - bg) ** 2).mean(dim=0).sqrt()
    return 1.0 + fg_weight * torch.clamp(d / scale, max=1.0)


def crop_sample(x0, cond, mask, aud0, k, f_lat):
    """The first k latent frames of a sample and the audio latent frames
    that span the same time (the audio latent rate is fixed)."""
    if k == f_lat:
        return x0, cond, mask, aud0
    n_aud = int(round(aud0.shape[0] * (k - 1) / (f_lat - 1)))
    return tuple(np.ascontiguousarray(v) for v in
                 (x0[:, :k], cond[:, :k], mask[:, :k], aud0[:n_aud]))


def train_step(P, tc, tcfg, data, a, step):
    rng = common.step_rng(a.seed, step, 0)
    gen = common.step_generator(a.seed, step, 1)
    lv_tot = la_tot = 0.0
    draws = []
    f_lat = data.lat.shape[2]
    k, batch = time_crop(a, rng, f_lat)
    for b in range(batch):
        x0, cond, mask, aud0, ids, _ = data.sample(rng, a.text_drop)
        x0, cond, mask, aud0 = crop_sample(x0, cond, mask, aud0, k, f_lat)
        x0 = torch.from_numpy(x0)
        aud0 = torch.from_numpy(aud0)
        u = (b + rng.random()) / batch            # stratified over the batch
        s = a.shift * u / (1 + (a.shift - 1) * u)
        ev = torch.randn(x0.shape, generator=gen)
        ea = torch.randn(aud0.shape, generator=gen)
        xt = (1 - s) * x0 + s * ev
        at = (1 - s) * aud0 + s * ea
        F_lat, H, W = x0.shape[1:]
        mk = torch.from_numpy(mask)[:, :, None, None].expand(mask.shape[0], F_lat, H, W)
        vin = torch.cat([xt, mk, torch.from_numpy(cond)], dim=0)
        draws.append((x0, mask, aud0, ids, s, ev, ea, at, vin))
    if a.fused_batch:
        _, _, _, idss, ss, _, _, ats, vins = zip(*draws)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            pvs, pas = fusion_batch(P, tc, torch.stack(vins), torch.stack(ats),
                                    torch.tensor([s * 1000.0 for s in ss], dtype=torch.float32),
                                    [text_encode(P, tcfg, ids) for ids in idss])
        preds = list(zip(pvs, pas))
    else:
        preds = [None] * batch
    for b, (x0, mask, aud0, ids, s, ev, ea, at, vin) in enumerate(draws):
        if preds[b] is not None:
            pv, pa = preds[b]
        else:
            t = torch.tensor(s * 1000.0, dtype=torch.float32)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.amp == "bf16"):
                ctx = text_encode(P, tcfg, ids)
                pv, pa = fusion(P, tc, vin, at, t, ctx)
        se = (pv.float() - (ev - x0)) ** 2
        lv = se.mean()                       # logged: the plain MSE, comparable across runs
        w = torch.ones(se.shape[1:])         # [F, H, W]
        if a.given_weight != 1.0 and step >= a.given_weight_from and mask.any():
            # latent frames holding a given frame weigh given_weight: the copy
            # of the condition into them is what i2v / FLF output is judged on
            w = w * torch.from_numpy(np.where(mask.any(axis=0), a.given_weight, 1.0)
                                     .astype(np.float32))[:, None, None]
        if a.fg_weight:
            w = w * object_weight(x0, a.fg_weight)
        lw = (se.mean(dim=0) * w).sum() / w.sum()
        la = F.mse_loss(pa.float(), ea - aud0)
        loss = (lw + a.audio_weight * la) / batch
        if a.fused_batch:
            total = loss if b == 0 else total + loss
        else:
            loss.backward()      # one sample's graph at a time: the least memory
        lv_tot += float(lv) / batch
        la_tot += float(la) / batch
    if a.fused_batch:
        total.backward()
    return lv_tot, la_tot


def args_differ(prev, cur):
    """Whether two runs' arguments train differently (paths, thread count,
    --resume and logging do not)."""
    skip = {"out", "config", "resume", "threads", "log_every", "save_every", "cmd", "stop_at"}
    keys = (set(prev) | set(cur)) - skip
    return any(prev.get(k) != cur.get(k) for k in keys)


def cmd_train(a):
    common.setup_torch(a.threads, a.seed, blas_threads=1)
    mc = common.load_model_config(a.config)
    tc, tcfg = tower_cfgs(mc), umt5_cfg(mc)
    data = Data(a.out)
    P = init_params(mc, a.seed)
    ema = OrderedDict((k, v.detach().clone()) for k, v in P.items())
    decay = [p for k, p in P.items() if p.ndim >= 2 and "embedding.weight" not in k[-25:]]
    no_decay = [p for k, p in P.items() if not (p.ndim >= 2 and "embedding.weight" not in k[-25:])]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.99), eps=1e-8)
    f_lat = data.lat.shape[2]
    if a.time_crop > 0 and not 1 <= a.crop_min < f_lat:
        raise SystemExit("train_dit: --crop-min %d: a time crop holds 1..%d of the %d latent "
                         "frames" % (a.crop_min, f_lat - 1, f_lat))
    ck, start, extra, log = common.start_run(a.out, P, opt, a.resume, a.save_every)
    if a.cycle_start > start:
        # the cycle's warm-up would start at a negative step (a negative rate)
        raise SystemExit("train_dit: --cycle-start %d is past the step the run is at (%d in %s); "
                         "a cycle starts at or before it" % (a.cycle_start, start, a.out))
    for k, v in extra.get("ema", {}).items():
        ema[k].copy_(v)
    # a resumed run with other arguments keeps the earlier ones, with the step
    # they ran to, so the exported record says how every step was trained
    history = list(extra.get("history", []))
    prev = extra.get("args")
    if prev is not None and args_differ(prev, vars(a)):
        history.append({"until_step": start, "args": prev})
    ckpt_extra = lambda: {"ema": ema, "args": vars(a), "history": history}  # noqa: E731
    step = start
    avg_v = avg_a = None
    stop = a.steps if a.stop_at is None else min(a.steps, a.stop_at)
    while step < stop:
        t0 = time.perf_counter()
        for g in opt.param_groups:
            g["lr"] = lr_at(a, step)
        opt.zero_grad(set_to_none=True)
        lv, la = train_step(P, tc, tcfg, data, a, step)
        gn = float(torch.nn.utils.clip_grad_norm_(list(P.values()), a.clip_grad))
        opt.step()
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in P.items():
                ema[k].mul_(d).add_(v.detach(), alpha=1 - d)
        step += 1
        avg_v = lv if avg_v is None else 0.98 * avg_v + 0.02 * lv
        avg_a = la if avg_a is None else 0.98 * avg_a + 0.02 * la
        sec = time.perf_counter() - t0
        if step % a.log_every == 0 or step == 1:
            log.write(step=step, loss_video=lv, loss_audio=la, avg_video=avg_v, avg_audio=avg_a,
                      lr=lr_at(a, step - 1), grad_norm=gn, sec=sec)
            print("step %6d  video %.4f (avg %.4f)  audio %.4f (avg %.4f)  lr %.2e  gn %.2f  "
                  "%.2fs/step" % (step, lv, avg_v, la, avg_a, lr_at(a, step - 1), gn, sec),
                  flush=True)
        if ck.due(step) or step == stop or ck.stop_requested:
            ck.save(step, P, opt, ckpt_extra())
            if ck.stop_requested:
                print("stopped at step %d (checkpoint saved)" % step, flush=True)
                return 0
    return 0


# ----------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------
def cmd_export(a):
    state = common.load_checkpoint(a.out)
    ema = state["extra"]["ema"]
    dt = DTYPES[a.dtype]
    os.makedirs(a.to, exist_ok=True)
    recs = common.JsonLog(os.path.join(a.out, "log.jsonl"), state["step"]).records()
    last = recs[-1] if recs else {}
    meta = {"step": state["step"], "args": state["extra"]["args"],
            "history": state["extra"].get("history", []),
            "final": {k: last.get(k) for k in ("avg_video", "avg_audio", "loss_video", "loss_audio")}}
    fus = OrderedDict((k, v) for k, v in ema.items() if not k.startswith("text."))
    txt = OrderedDict((k[5:], v) for k, v in ema.items() if k.startswith("text."))
    common.st_save(os.path.join(a.to, "fusion.safetensors"), fus, {"reel_training": meta}, dt)
    common.st_save(os.path.join(a.to, "text_encoder.safetensors"), txt, {"reel_training": meta},
                   dt)
    common.write_json_atomic(os.path.join(a.out, "export.json"), meta)
    print("exported step %d to %s (%s)" % (state["step"], a.to, a.dtype))
    return 0


def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("prepare", "train", "export"):
        p = sub.add_parser(name)
        p.add_argument("--out", required=True)
        p.add_argument("--config", default=os.path.join(REPO, "configs", "reel-default.yaml"))
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--seed", type=int, default=0)
        if name == "prepare":
            p.add_argument("--vae", help="stage-1 output dir (vae.safetensors)")
            p.add_argument("--audio", help="stage-2 output dir (audio_vae.safetensors)")
            p.add_argument("--video-only", action="store_true")
            p.add_argument("--audio-only", action="store_true")
            p.add_argument("--data", default=None)
            p.add_argument("--n-train", type=int, default=1024)
            p.add_argument("--n-cond", type=int, default=384,
                           help="clips that also get the three frame-conditioning encodes")
            p.add_argument("--encoder", default=common.VAE_TOOL)
            p.add_argument("--data-seed", type=int, default=11)
            p.add_argument("--reel", default=os.path.join(REPO, "build", "reel"))
            p.add_argument("--tokenizer",
                           default=os.path.join(REPO, "configs", "reel-default", "tokenizer.model"))
        if name == "train":
            p.add_argument("--steps", type=int, default=10000)
            p.add_argument("--resume", action="store_true")
            p.add_argument("--batch", type=int, default=4)
            p.add_argument("--lr", type=float, default=3e-4)
            p.add_argument("--warmup", type=int, default=200)
            p.add_argument("--cycle-start", type=int, default=0,
                           help="step the learning-rate cycle (warm-up + cosine to --steps) "
                                "starts at: a resumed run past its schedule begins a new one")
            p.add_argument("--stop-at", type=int, default=None,
                           help="stop (with a checkpoint) at this step, the schedule still "
                                "running to --steps: one part of a run trained in parts with "
                                "different arguments")
            p.add_argument("--time-crop", type=float, default=0.0,
                           help="probability that a step trains on a time prefix of its clips "
                                "(with proportionally more clips)")
            p.add_argument("--crop-min", type=int, default=7,
                           help="fewest latent frames of a time crop")
            p.add_argument("--wd", type=float, default=0.01)
            p.add_argument("--shift", type=float, default=3.0)
            p.add_argument("--text-drop", type=float, default=0.1)
            p.add_argument("--audio-weight", type=float, default=1.0)
            p.add_argument("--fused-batch", action="store_true",
                           help="one forward for the whole batch (make_golden_ovi.fusion_run_batch) "
                                "instead of one per sample: the same step, cheaper per sample")
            p.add_argument("--given-weight", type=float, default=8.0,
                           help="loss weight of the latent frames that hold a given frame "
                                "(from --given-weight-from on)")
            p.add_argument("--given-weight-from", type=int, default=8100,
                           help="the step the shipped run switched --given-weight on (before "
                                "it, every latent frame weighed 1)")
            p.add_argument("--fg-weight", type=float, default=0.0,
                           help="extra video-loss weight of the latent pixels away from their "
                                "frame's background (train_dit.object_weight)")
            p.add_argument("--ema", type=float, default=0.999)
            p.add_argument("--amp", choices=("bf16", "off"), default="bf16",
                           help="bf16 autocast of the matmuls (oneDNN, AVX512-BF16 / AMX): "
                                "0.16 s/sample vs 0.27 in f32 on 2 cores; params, optimizer and "
                                "loss stay f32")
            common.add_step_args(p)
        if name == "export":
            p.add_argument("--to", required=True)
            p.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    a = ap.parse_args(argv)
    if a.cmd == "train":
        if not 0.0 <= a.time_crop <= 1.0:
            ap.error("--time-crop %g: a probability, 0..1" % a.time_crop)
        if not 0 <= a.cycle_start < a.steps:
            ap.error("--cycle-start %d: must be 0 or more and below --steps %d"
                     % (a.cycle_start, a.steps))
    return a


def main(argv=None):
    a = parse(argv)
    return {"prepare": cmd_prepare, "train": cmd_train, "export": cmd_export}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
