#!/usr/bin/python3
"""train_vae.py - stage 1 of the default model: the tiny Wan2.1 VAE.

    train_vae.py --out DIR [--steps N] [--resume] [--config configs/reel-default.yaml]
                 [--data DIR] [--heldout DIR] [--n-train 256] [--n-heldout 16]
                 [--batch 2] [--crop 64] [--frames 5,9] [--lr 2e-4] [--kl 1e-6]
                 [--edge 0.1] [--save-every 100] [--threads 2] [--seed 0]
                 [--dtype f16|bf16|f32] [--eval-n 8] [--eval-frames 9]

The network is make_golden.WanVAE (the module proven against the official
golden files, the same math reel's C engine runs), with trainable leaf
tensors under the exact reference state_dict names. Training clips are random
64x64 crops of 5 or 9 frames of 128x128 synthetic clips (scripts/synth);
loss = L1(recon, x) + kl * KL(q(z|x) || N(0, I)) + edge * L1 of the spatial
gradients + temporal * L1 of the frame-to-frame differences (the L1s
weighted towards the object, --fg-weight, and the crop's rim, --rim-weight);
AdamW, linear warm-up then cosine decay to 10 %.

Writes into DIR: ckpt.pt (resume state, every --save-every steps and on
SIGTERM/SIGINT), log.jsonl (losses), and at the end vae.safetensors (the
reel tensor table, --dtype), stats.json (per-channel latent mean/std of
the held-out clips for the config's vae.latent_mean/latent_std, held-out
PSNR, the exact training arguments, data seeds and final losses).
"""
import argparse
import json
import math
import os
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import REPO  # noqa: E402
import make_golden as mg  # noqa: E402  (scripts/ is on sys.path via common)

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


# ----------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------
def init_params(cfg, seed):
    """Leaf tensors (requires_grad) in WanVAE_.state_dict() order, PyTorch's
    default init (what vae_param_specs records), zero-init output projections
    of attention, and identity time convs (a frame-copy prior)."""
    g = torch.Generator()
    g.manual_seed(seed)
    P = OrderedDict()
    for name, shape, init in mg.vae_param_specs(cfg, False):
        if init == "ones":
            t = torch.ones(shape)
        elif init == "zeros":
            t = torch.zeros(shape)
        elif isinstance(init, tuple) and init[0] == "uniform":
            t = (torch.rand(shape, generator=g) * 2 - 1) * init[1]
        else:
            raise ValueError(init)
        if ".time_conv." in name:
            if name.endswith(".weight"):     # [cout, cin, 3, 1, 1]
                t = torch.zeros(shape)
                cin = shape[1]
                for h in range(shape[0] // cin):
                    t[h * cin:(h + 1) * cin, :, -1, 0, 0] = torch.eye(cin)
            else:
                t = torch.zeros(shape)
        if name.endswith(".bias") and ".time_conv." not in name:
            # Zero biases: with PyTorch's default bias init the per-pixel RMS
            # norms see mostly the biases' direction, the input's signal is a
            # few percent of it, and encoder and decoder learn to ignore z
            # (measured: mu spread across clips 0.001 vs 0.1 at step 100).
            t = torch.zeros(shape)
        if name in ("conv1.weight", "conv1.bias"):
            # Start with a near-deterministic posterior (log_var = -8): with
            # PyTorch's default init log_var is ~0, z is mostly noise, and the
            # decoder learns to ignore z (seen: the same output for every clip
            # after 400 steps). The KL term can still widen it later.
            z = shape[0] // 2
            if name == "conv1.weight":
                t[z:] = 0.0
            else:
                t[z:] = -8.0
        P[name] = t.requires_grad_(True)
    return P


def vae_forward(P, cfg, x, gen=None, sample=True):
    """x [B,3,T,H,W] -> (recon, mu, logvar). Same encode/decode as reel runs."""
    vae = mg.WanVAE(P, cfg, False)
    z = cfg["z_dim"]
    zero, one = torch.zeros(z), torch.ones(z)
    mids = {}
    vae.encode(x, zero, one, mids)
    h = mids["enc_conv1_out"]
    mu, logvar = h[:, :z], h[:, z:].clamp(-30.0, 20.0)
    lat = mu
    if sample:
        eps = torch.randn(mu.shape, generator=gen)
        lat = mu + torch.exp(0.5 * logvar) * eps
    rec = vae.decode(lat, zero, one)
    return rec, mu, logvar


def grow_object(fg):
    """Object mask float [N, 1, T, H, W] grown by 2 px, so the halo a blurry
    decoder leaves around the object counts as the object's."""
    return F.max_pool3d(fg, kernel_size=(1, 5, 5), stride=1, padding=(0, 2, 2))


def fg_weights(fg, weight, rim=0.0):
    """Per-pixel L1 weights: 1 + weight on the grown object, + rim on the
    crop's outer 2-pixel ring (the convolutions' zero padding is there; a
    decoder that gets it wrong draws a coloured frame round a flat
    background, which a reader of the clip takes for a second object)."""
    w = 1.0 + weight * grow_object(fg)
    if rim > 0:
        ring = torch.ones(fg.shape[-2:])
        ring[2:-2, 2:-2] = 0.0
        w = w + rim * ring
    return w


def temporal_l1(rec, x, w):
    """Weighted L1 of the frame-to-frame differences (recon vs x): the plain
    L1 is content with an object smeared along its path, or one that turns
    round a few pixels short of a wall; the differences are not. w: the
    per-pixel weights (the larger of the two frames')."""
    if x.shape[2] < 2:
        return rec.new_zeros(())
    dr, dx = rec[:, :, 1:] - rec[:, :, :-1], x[:, :, 1:] - x[:, :, :-1]
    wt = torch.maximum(w[:, :, 1:], w[:, :, :-1]).expand_as(dr)
    return ((dr - dx).abs() * wt).mean() / wt.mean()


def losses(P, cfg, x, gen, a, sample=True, fg=None):
    """fg: the loader's object mask, or None; with a.fg_weight > 0 the L1 is
    weighted towards the object (it covers 1-5 % of a frame: unweighted,
    the VAE learns the flat background and returns the object as a dim
    blob of the wrong colour)."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.amp == "bf16"):
        rec, mu, logvar = vae_forward(P, cfg, x, gen, sample)
    rec, mu, logvar = rec.float(), mu.float(), logvar.float()
    if fg is not None and a.fg_weight > 0:
        w = fg_weights(fg, a.fg_weight, a.rim_weight)
    else:
        w = fg_weights(torch.zeros_like(x[:, :1]), 0.0, a.rim_weight)
    l1 = ((rec - x).abs() * w).mean() / w.mean()
    tl1 = temporal_l1(rec, x, w) if a.temporal > 0 else rec.new_zeros(())
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
    def grads(v):
        return v[..., 1:, :] - v[..., :-1, :], v[..., :, 1:] - v[..., :, :-1]
    (ry, rx), (xy, xx) = grads(rec), grads(x)
    edge = 0.5 * ((ry - xy).abs().mean() + (rx - xx).abs().mean())
    loss = l1 + a.kl * kl + a.edge * edge + a.temporal * tl1
    return loss, {"l1": float(l1), "kl": float(kl), "edge": float(edge), "temporal": float(tl1)}, rec, mu


def lr_at(a, step):
    w = max(1, min(a.warmup, a.steps // 10 or 1))
    if step < w:
        return a.lr * (step + 1) / w
    p = (step - w) / max(1, a.steps - w)
    return a.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


def psnr(rec, x):
    """PSNR in dB of clamped recon vs x, both in [-1, 1], pixel range 1."""
    mse = ((rec.clamp(-1, 1) - x) / 2).pow(2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


def object_mask(clips_u8):
    """uint8 [N,T,H,W,3] -> bool [N,T,H,W]: pixels unlike the frame's flat
    background (the median of its border), grown by 2 px."""
    c = clips_u8
    border = np.concatenate([c[:, :, 0], c[:, :, -1], c[:, :, :, 0], c[:, :, :, -1]], axis=2)
    bg = np.median(border, axis=2)[:, :, None, None, :]
    fg = torch.from_numpy(common.object_pixels(c, bg).astype(np.float32))
    return grow_object(fg[:, None])[:, 0].numpy() > 0


@torch.no_grad()
def evaluate(P, cfg, clips_u8, chunk=2):
    """Deterministic (z = mu) reconstruction of full clips -> dict: psnr, l1,
    obj_psnr (PSNR over the object's pixels alone), obj_colour_err (mean
    RGB distance, 0-255, between the true and reconstructed object pixels'
    mean colour per frame), per-channel raw latent mean, std."""
    mus, se, l1s, n, ose, on, cerr = [], 0.0, 0.0, 0, 0.0, 0, []
    mask = object_mask(clips_u8)
    for i in range(0, len(clips_u8), chunk):
        x = common.to_video_tensor(clips_u8[i:i + chunk])
        rec, mu, _ = vae_forward(P, cfg, x, sample=False)
        d2 = ((rec.clamp(-1, 1) - x) / 2).pow(2)
        se += d2.sum().item()
        l1s += (rec - x).abs().sum().item()
        n += x.numel()
        m = torch.from_numpy(mask[i:i + chunk])[:, None].expand_as(d2)
        ose += d2[m].sum().item()
        on += int(m.sum())
        xr = (rec.clamp(-1, 1) + 1) * 127.5
        xt = (x + 1) * 127.5
        for b in range(x.shape[0]):
            for t in range(x.shape[2]):
                mm = torch.from_numpy(mask[i + b, t])
                if mm.any():
                    cerr.append(float((xr[b, :, t][:, mm].mean(1) - xt[b, :, t][:, mm].mean(1)).norm()))
        mus.append(mu.permute(1, 0, 2, 3, 4).reshape(cfg["z_dim"], -1))
    m = torch.cat(mus, dim=1).double()
    psnr_of = lambda e, k: 10 * math.log10(1.0 / max(e / max(k, 1), 1e-12))  # noqa: E731
    return {"psnr": psnr_of(se, n), "l1": l1s / n, "obj_psnr": psnr_of(ose, on),
            "obj_colour_err": float(np.mean(cerr)) if cerr else float("nan"),
            "mean": m.mean(dim=1).tolist(), "std": m.std(dim=1).tolist()}


def heldout_line(clips, ev):
    return ("held-out: %d clips %dx%d, %d frames: PSNR %.2f dB, L1 %.4f, object PSNR %.2f dB, "
            "object colour error %.1f" % (len(clips), clips.shape[2], clips.shape[3], clips.shape[1],
                                          ev["psnr"], ev["l1"], ev["obj_psnr"], ev["obj_colour_err"]))


def export(P, path, dtype, meta):
    common.st_save(path, OrderedDict((k, v.detach()) for k, v in P.items()), meta, dtype)


# ----------------------------------------------------------------------------
def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "reel-default.yaml"))
    common.add_data_args(ap)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--crop", default="64",
                    help="crop size, or sizes: 32,64 (a step picks one; smaller crops, larger batch)")
    ap.add_argument("--frames", default="5,9")
    ap.add_argument("--object-crop-p", type=float, default=0.0,
                    help="probability that a crop is centred (with jitter) on the moving object")
    ap.add_argument("--impact-p", type=float, default=0.0,
                    help="probability that a clip of 5+ frames holds a wall impact inside a latent frame")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--kl", type=float, default=1e-6)
    ap.add_argument("--edge", type=float, default=0.1)
    ap.add_argument("--fg-weight", type=float, default=0.0,
                    help="extra L1 weight on the object's pixels (grown by 2 px)")
    ap.add_argument("--rim-weight", type=float, default=0.0,
                    help="extra L1 weight on each crop's outer 2-pixel ring")
    ap.add_argument("--temporal", type=float, default=0.0,
                    help="weight of the L1 of frame-to-frame differences (sharp motion, wall contacts)")
    ap.add_argument("--amp", choices=("bf16", "off"), default="off",
                    help="bf16 autocast of the convolutions (oneDNN): at dim 16 a 9-frame step "
                         "takes 1.19 s instead of 1.86")
    ap.add_argument("--init-from", metavar="CKPT",
                    help="start from this checkpoint's weights (fresh optimizer and schedule)")
    common.add_run_args(ap, eval_n=8)
    ap.add_argument("--eval-frames", type=int, default=9)
    ap.add_argument("--eval-ckpt", action="store_true",
                    help="print the held-out PSNR of OUT/ckpt.pt and exit (no training, nothing written)")
    ap.add_argument("--export-ckpt", metavar="FILE",
                    help="write OUT/ckpt.pt's weights (mid-run) to FILE as --dtype safetensors and exit "
                         "(for eval_default.py --vae-ceiling N --vae-weights FILE)")
    # testing aids: simulate a kill at a step (SIGTERM to self, or a hard SIGKILL)
    ap.add_argument("--test-sigterm-at", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--test-sigkill-at", type=int, default=-1, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.frames = [int(f) for f in str(a.frames).split(",")]
    a.crop = [int(c) for c in str(a.crop).split(",")]
    for f in a.frames:
        assert f >= 1 and (f - 1) % 4 == 0, "--frames must be 1 + 4k"
    return a


def main(argv=None):
    a = parse(argv)
    os.makedirs(a.out, exist_ok=True)
    common.setup_torch(a.threads, a.seed, blas_threads=1)
    model_cfg = common.load_model_config(a.config)
    cfg = mg_cfg = common.vae_cfg(model_cfg)
    data_root = os.path.join(os.path.dirname(os.path.abspath(a.out)), "data")
    a.data = a.data or os.path.join(data_root, "train")
    a.heldout = a.heldout or os.path.join(data_root, "heldout")
    if not a.export_ckpt:   # exporting a checkpoint reads no clips
        common.ensure_dataset(a.data, a.n_train, a.data_seed, "train")
        common.ensure_dataset(a.heldout, a.n_heldout, a.heldout_seed, "heldout")

    P = init_params(mg_cfg, a.seed)
    opt = torch.optim.AdamW(list(P.values()), lr=a.lr, betas=(0.9, 0.99), weight_decay=a.wd)
    if a.eval_ckpt or a.export_ckpt:
        # the checkpoint as it stands, mid-run: its held-out numbers, or its weights
        ck = common.Checkpointer(a.out)
        if not ck.exists():
            raise SystemExit("%s: no checkpoint" % ck.path)
        step, _ = ck.load(P, opt)
        if a.export_ckpt:
            export(P, a.export_ckpt, DTYPES[a.dtype], {"reel_vae_step": str(step)})
            print("wrote %s (step %d)" % (a.export_ckpt, step))
            return 0
        clips = common.load_clips(a.heldout, a.eval_n, a.eval_frames)
        print("step %d %s" % (step, heldout_line(clips, evaluate(P, cfg, clips))))
        return 0
    if a.resume and common.checkpoint_files(a.out) and all(
            os.path.exists(os.path.join(a.out, f)) for f in ("vae.safetensors", "stats.json")):
        done = int(common.load_checkpoint(a.out)["step"])
        if done >= a.steps:
            # finished and exported: nothing to redo (the shipped VAE's base
            # stage was trained in another layout, 4x in time, and would not
            # load into this config's parameters)
            print("%s: finished at step %d (vae.safetensors, stats.json written)" % (a.out, done))
            return 0
    ck, step, _, log = common.start_run(a.out, P, opt, a.resume, a.save_every)
    if step == 0 and a.init_from:
        # a fine-tuning run: the weights of another run's checkpoint, a fresh
        # optimizer and schedule
        init = common.load_checkpoint(a.init_from)
        src = init["params"]
        with torch.no_grad():
            for k, v in P.items():
                if src[k].shape != v.shape:
                    raise SystemExit("%s: %s has shape %s, this config %s" % (
                        a.init_from, k, list(src[k].shape), list(v.shape)))
                v.copy_(src[k])
        print("initialised from %s (step %d)" % (a.init_from, init["step"]), flush=True)
    loader = common.ClipLoader(a.data, a.seed, a.batch, [(c, c) for c in a.crop], a.frames,
                               object_p=a.object_crop_p, impact_p=a.impact_p)
    args_rec = {k: v for k, v in vars(a).items() if not k.startswith("test_")}

    t_start, n_done, last = time.perf_counter(), 0, {}
    while step < a.steps:
        t0 = time.perf_counter()
        x, fg = loader.batch_at(step, with_mask=True)
        lr = lr_at(a, step)
        for grp in opt.param_groups:
            grp["lr"] = lr
        loss, parts, _, _ = losses(P, cfg, x, common.step_generator(a.seed, step, 2), a, fg=fg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(list(P.values()), a.clip_grad))
        opt.step()
        step += 1
        n_done += 1
        dt = time.perf_counter() - t0
        last = dict(step=step, loss=float(loss), lr=lr, grad_norm=gn, sec=dt,
                    frames=int(x.shape[2]), **parts)
        if step % a.log_every == 0 or step == a.steps or step == 1:
            log.write(**last)
            print("step %5d  loss %.4f  l1 %.4f  kl %.3f  edge %.4f  temporal %.4f  lr %.2e  %.2fs/step"
                  % (step, last["loss"], parts["l1"], parts["kl"], parts["edge"], parts["temporal"], lr, dt),
                  flush=True)
        if step == a.test_sigkill_at:
            os.kill(os.getpid(), 9)
        if step == a.test_sigterm_at:
            os.kill(os.getpid(), 15)
        if ck.due(step) or ck.stop_requested or step == a.steps:
            ck.save(step, P, opt, {"args": args_rec})
        if ck.stop_requested:
            print("stopped at step %d (checkpoint saved); continue with --resume" % step)
            return 0
    el = time.perf_counter() - t_start
    if n_done:
        print("trained %d steps in %.1fs (%.3fs/step)" % (n_done, el, el / n_done))
    if a.no_export:
        return 0

    clips = common.load_clips(a.heldout, a.eval_n, a.eval_frames)
    ev = evaluate(P, cfg, clips)
    p, l1, mean, std = ev["psnr"], ev["l1"], ev["mean"], ev["std"]
    print(heldout_line(clips, ev))
    print("latent_mean: [%s]" % ", ".join("%.4f" % v for v in mean))
    print("latent_std:  [%s]" % ", ".join("%.4f" % v for v in std))
    recs = log.records()
    tail = recs[-10:]
    stats = {"stage": "vae", "steps": step, "latent_mean": mean, "latent_std": std,
             "heldout_psnr_db": p, "heldout_l1": l1, "heldout_object_psnr_db": ev["obj_psnr"],
             "heldout_object_colour_err": ev["obj_colour_err"],
             "heldout": {"dir": a.heldout, "seed": a.heldout_seed, "clips": len(clips),
                         "frames": int(clips.shape[1])},
             "train_data": {"dir": a.data, "seed": a.data_seed, "n": a.n_train},
             "final_loss": last.get("loss") if last else (tail[-1]["loss"] if tail else None),
             "final_loss_mean_last10_logged": (sum(r["loss"] for r in tail) / len(tail)) if tail else None,
             "args": args_rec, "vae_config": cfg, "torch": torch.__version__}
    common.write_json_atomic(os.path.join(a.out, "stats.json"), stats)
    meta = {"format": "pt", "stage": "vae", "config": json.dumps(model_cfg["vae"]),
            "training": json.dumps({"steps": step, "args": args_rec}),
            "latent_mean": json.dumps(mean), "latent_std": json.dumps(std),
            "heldout_psnr_db": "%.3f" % p}
    export(P, os.path.join(a.out, "vae.safetensors"), DTYPES[a.dtype], meta)
    print("wrote %s and %s" % (os.path.join(a.out, "vae.safetensors"), os.path.join(a.out, "stats.json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
