#!/usr/bin/python3
"""PyTorch reference for `make bench`: an independent, compact MMAudio 16 kHz
audio decode (the mel VAE's decoder, then the BigVGAN vocoder), written
from the networks' published structure, run on the same safetensors files
as tests/bench_audio.c.

    bench_audio_torch.py --vae V --vocoder G --latent Z [--ours O] [--runs N] [--threads N]
    bench_audio_torch.py --golden-vae FILE --golden-vocoder FILE   # self-check

Weights are f32, stored as after remove_weight_norm() (plain `.weight`).
The safetensors reader is a few lines of numpy. Prints '#' lines and, last,
"seconds=X" (best VAE decode + vocoder time over --runs).
"""
import argparse
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


# One numpy safetensors reader for the bench references (F32/BF16/F16/I64).
from bench_dit_torch import read_safetensors  # noqa: E402


# ------------------------------------------------------------ MMAudio VAE

def pnorm(x):
    """EDM2 normalize over channels of [C, L]: x / (1e-4 + ||x|| / sqrt(C))."""
    n = torch.linalg.vector_norm(x, dim=0, keepdim=True)
    return x / (1e-4 + n * math.sqrt(1.0 / x.shape[0]))


def mp_silu(x):
    return F.silu(x) / 0.596


def mp_sum(a, b, t=0.3):
    return a.lerp(b, t) / math.sqrt((1 - t) ** 2 + t ** 2)


def mpconv(x, w, gain=1.0):
    # After remove_weight_norm the MPConv1D forward is a plain conv.
    if gain != 1.0:
        w = w * gain
    return F.conv1d(x[None], w, padding=w.shape[-1] // 2)[0]


def resblock(W, p, x):
    x = pnorm(x)
    h = mpconv(mp_silu(x), W[p + "conv1.weight"])
    h = mpconv(mp_silu(h), W[p + "conv2.weight"])
    if p + "nin_shortcut.weight" in W:
        x = mpconv(x, W[p + "nin_shortcut.weight"])
    return mp_sum(x, h)


def attnblock(W, p, x):
    C, L = x.shape
    qkv = mpconv(x, W[p + "qkv.weight"]).view(C, 3, L)  # channel 3c + j: part j of c
    q, k, v = (pnorm(qkv[:, j]).t() for j in range(3))  # [L, C]
    a = torch.softmax(q @ k.t() / math.sqrt(C), dim=-1) @ v
    return mp_sum(x, mpconv(a.t().contiguous(), W[p + "proj_out.weight"]))


def vae_decode(W, cfg, z):
    """z [embed, L] -> log10 mel [data_dim, 2^downs L] (Decoder1D + unnormalize)."""
    nl, clip = len(cfg["ch_mult"]), cfg["clip_act"]
    ups = [i + 1 for i in cfg["down_layers"]]
    h = mpconv(z, W["decoder.conv_in.weight"])
    h = resblock(W, "decoder.mid.block_1.", h)
    h = attnblock(W, "decoder.mid.attn_1.", h)
    h = resblock(W, "decoder.mid.block_2.", h).clamp(-clip, clip)
    for i in reversed(range(nl)):
        for j in range(cfg["num_res_blocks"] + 1):
            h = resblock(W, f"decoder.up.{i}.block.{j}.", h)
            if i in cfg["attn_layers"]:
                h = attnblock(W, f"decoder.up.{i}.attn.{j}.", h)
            h = h.clamp(-clip, clip)
        if i in ups:
            h = mpconv(h.repeat_interleave(2, dim=1), W[f"decoder.up.{i}.upsample.conv.weight"])
    gain = float(W["decoder.learnable_gain"]) + 1.0
    h = mpconv(mp_silu(h), W["decoder.conv_out.weight"], gain)
    return h * W["data_std"].view(-1, 1) + W["data_mean"].view(-1, 1)


# ---------------------------------------------------------------- BigVGAN

def aa_act(W, p, x, logscale):
    """Activation1d: 2x upsample, SnakeBeta, 2x downsample, on [C, L]."""
    C = x.shape[0]
    fu = W[p + "upsample.filter"]
    fd = W[p + "downsample.lowpass.filter"]
    K = fu.shape[-1]
    pad = K // 2 - 1
    crop = pad * 2 + (K - 2) // 2
    crop_r = pad * 2 + (K - 2 + 1) // 2
    y = F.pad(x[None], (pad, pad), mode="replicate")
    y = 2 * F.conv_transpose1d(y, fu.expand(C, -1, -1), stride=2, groups=C)
    y = y[..., crop:-crop_r]
    a, b = W[p + "act.alpha"], W[p + "act.beta"]
    if logscale:
        a, b = a.exp(), b.exp()
    y = y + (1.0 / (b.view(1, -1, 1) + 1e-9)) * torch.sin(y * a.view(1, -1, 1)).pow(2)
    y = F.pad(y, (K // 2 - 1, K // 2), mode="replicate")
    return F.conv1d(y, fd.expand(C, -1, -1), stride=2, groups=C)[0]


def conv(W, p, x, dil=1):
    w = W[p + ".weight"]
    k = w.shape[-1]
    return F.conv1d(x[None], w, W[p + ".bias"], dilation=dil, padding=(k * dil - dil) // 2)[0]


def vocoder(W, cfg, mel):
    """mel [num_mels, T] -> wave [T * hop] (BigVGANVocoder, resblock '1')."""
    ls = cfg["snake_logscale"]
    nk = len(cfg["resblock_kernel_sizes"])
    x = conv(W, "conv_pre", mel)
    for i, (u, k) in enumerate(zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"])):
        x = F.conv_transpose1d(x[None], W[f"ups.{i}.0.weight"], W[f"ups.{i}.0.bias"],
                               stride=u, padding=(k - u) // 2)[0]
        xs = 0
        for j, dils in enumerate(cfg["resblock_dilation_sizes"]):
            r, h = i * nk + j, x
            for d, dil in enumerate(dils):
                p = f"resblocks.{r}."
                t = aa_act(W, p + f"activations.{2 * d}.", h, ls)
                t = conv(W, p + f"convs1.{d}", t, dil)
                t = aa_act(W, p + f"activations.{2 * d + 1}.", t, ls)
                h = h + conv(W, p + f"convs2.{d}", t)
            xs = xs + h
        x = xs / nk
    x = aa_act(W, "activation_post.", x, ls)
    return torch.tanh(conv(W, "conv_post", x))[0]


# ------------------------------------------------------------------ main

def strip(d, prefix):
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


def golden(vae_path, voc_path):
    bad = 0
    T, meta = read_safetensors(vae_path)
    c = json.loads(meta["config"])
    cfg = {"ch_mult": [1, 2, 4], "num_res_blocks": 2, "attn_layers": [3], "down_layers": [0],
           "clip_act": 256.0}
    cfg.update({k: c[k] for k in cfg if k in c})
    with torch.no_grad():
        out = vae_decode(strip(T, "weights."), cfg, T["in.z"][0])
    d = (out - T["out.dec"][0]).abs().max().item()
    print(f"# golden {vae_path}: dec max abs diff {d:.3g} "
          f"(max |out| {T['out.dec'].abs().max().item():.3g})")
    bad |= not d <= 1e-4
    T, meta = read_safetensors(voc_path)
    cfg = json.loads(meta["config"])
    with torch.no_grad():
        out = vocoder(strip(T, "weights."), cfg, T["in.mel"][0])
    d = (out - T["out.wave"].flatten()).abs().max().item()
    print(f"# golden {voc_path}: wave max abs diff {d:.3g} "
          f"(max |out| {T['out.wave'].abs().max().item():.3g})")
    bad |= not d <= 2e-5
    return int(bad)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vae")
    ap.add_argument("--vocoder")
    ap.add_argument("--latent")
    ap.add_argument("--ours", help="our output (safetensors, tensors mel and wave)")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--golden-vae")
    ap.add_argument("--golden-vocoder")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.golden_vae or a.golden_vocoder:
        if not (a.golden_vae and a.golden_vocoder):
            ap.error("--golden-vae and --golden-vocoder go together")
        return golden(a.golden_vae, a.golden_vocoder)
    if not (a.vae and a.vocoder and a.latent):
        ap.error("--vae, --vocoder and --latent are required")

    VW, vmeta = read_safetensors(a.vae)
    GW, gmeta = read_safetensors(a.vocoder)
    vcfg, gcfg = json.loads(vmeta["config"]), json.loads(gmeta["config"])
    Z, _ = read_safetensors(a.latent)
    z = Z["z"]
    best, split = math.inf, (0, 0)
    with torch.no_grad():
        for r in range(a.runs):
            t0 = time.perf_counter()
            mel = vae_decode(VW, vcfg, z)
            t1 = time.perf_counter()
            wave = vocoder(GW, gcfg, mel)
            t2 = time.perf_counter()
            print(f"# torch run {r + 1}: {t2 - t0:.3f} s (VAE decode {t1 - t0:.3f} s, "
                  f"vocoder {t2 - t1:.3f} s)", flush=True)
            if t2 - t0 < best:
                best, split = t2 - t0, (t1 - t0, t2 - t1)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, latent "
          f"{list(z.shape)} -> mel {list(mel.shape)} -> {wave.numel()} samples, best of "
          f"{a.runs} (VAE {split[0]:.3f} s + vocoder {split[1]:.3f} s), "
          f"max |wave| {wave.abs().max().item():.3g}")
    if a.ours:
        ours, _ = read_safetensors(a.ours)
        dm = (ours["mel"] - mel).abs().max().item()
        dw = (ours["wave"] - wave).abs().max().item()
        print(f"# audio decode max abs diff vs torch: mel {dm:.3g}, wave {dw:.3g}")
        # f32 reordering noise is ~1e-6 of the scale; far above it means the
        # two sides compute different things.
        if not (dm <= 1e-3 * max(1.0, mel.abs().max().item()) and dw <= 1e-3):
            print("# WARNING: the outputs differ far beyond rounding: a bug on one side")
    print(f"seconds={best:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
