#!/usr/bin/python3
"""train_audio.py - stage 2 of the default model: the audio codec (16 kHz).

    train_audio.py --out DIR [--vae-steps N] [--voc-steps N] [--resume]
                   [--config YAML] [--data DIR] [--heldout DIR] [--threads 2]
                   [--dtype f16|bf16|f32] [--check-files] ...

Two networks, trained one after the other in one run (global step s: the
first --vae-steps steps train the VAE, the next --voc-steps the vocoder):

  * the MMAudio-style mel VAE (mmaudio/ext/autoencoder: magnitude-preserving
    convs, pixel norm, one middle attention block, 2x time downsampling):
    80-bin log10 mel (MMAudio's 16k MelConverter) -> 8 latent channels at
    31.25 latents/s -> mel;
  * a small BigVGAN-style vocoder (mmaudio/ext/bigvgan, resblock '1',
    anti-aliased SnakeBeta): mel -> 16 kHz waveform (hop 256).

The math is imported, never copied: the mel converter, the VAE encoder and
MPConv1D weight-norm removal come from scripts/make_golden_audio.py, the VAE
decoder and the vocoder from scripts/bench_audio_torch.py; both are proven
against the official golden files (`make_golden_audio.py --verify`). Those
modules are functional (a weights dict W + a config): the trainable state
is a dict of leaf tensors under the exact reference state_dict names.

  * VAE: each MPConv1D weight is a raw tensor trained as MMAudio trains it
    (forward = conv with remove_weight_norm(raw), i.e. normalised per output
    channel and scaled by 1/sqrt(fan_in); after every optimiser step the raw
    tensor is re-normalised: "forced weight normalisation"). The exported
    file holds the weights *after* remove_weight_norm() (config
    `weight_norm_removed: true`): exactly the dict the training forward runs.
    data_mean / data_std (the mel normalisation buffers) are the per-bin
    mean / std of the training clips' mels (std floored at --min-std).
    Loss: L1 of the normalised mel + --vae-l2 * L2 + --kl * KL (z sampled
    with the reparameterisation trick).
  * Vocoder: plain `.weight` / `.bias` (the form after remove_weight_norm,
    what reel and MMAudio's BigVGAN wrapper run), trained on random 0.5-1 s
    windows of the ground-truth mel (and, with probability --voc-vae-mix,
    the trained VAE's reconstruction of it). Loss: multi-resolution STFT
    (--voc-sc * spectral convergence + log magnitude L1, 4 resolutions) +
    --voc-mel * L1 of the log10 mel + --voc-wave * L1 of the waveform (0 by
    default: with no phase information it pulls the tones towards silence).
    No GAN.

Windows are centred on an impact with probability --impact-p (the synthetic
audio is percussive tones at impacts and exact silence elsewhere).

Writes into DIR: ckpt.pt (every --save-every steps, at the last step and on
SIGTERM/SIGINT), log.jsonl, and at the end audio_vae.safetensors,
vocoder.safetensors (--dtype, f16 default) and stats.json (args, data seeds,
final losses, held-out metrics computed with the exported, rounded weights:
mel L1, silence level, onset timing). --check-files also writes
check_audio_vae.safetensors / check_vocoder.safetensors in the golden-file
format (README-audio.md) for `reel check`.

For the DiT stage: encode_audio(W, cfg, wave_16k) -> [T, embed_dim] latent
means (see its docstring).
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
import make_golden_audio as mga  # noqa: E402  (scripts/ is on sys.path via common)
import bench_audio_torch as B  # noqa: E402

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}

# MMAudio's get_mel_converter('16k'); the vocoder's hop must equal hop_size
MEL_16K = {"sampling_rate": 16000, "n_fft": 1024, "hop_size": 256, "win_size": 1024,
           "num_mels": 80, "fmin": 0, "fmax": 8000}

# The `audio:` section of the default model (vae + vocoder; the `dit`
# subsection belongs to the DiT stage). Used unless --config has one.
AUDIO_DEFAULT = {
    "sample_rate": 16000,
    "vae": {"weights": "audio_vae.safetensors", "weight_norm_removed": True, "data_dim": 80,
            "embed_dim": 8, "hidden_dim": 64, "ch_mult": [1, 2], "num_res_blocks": 1,
            "attn_layers": [], "down_layers": [0], "kernel_size": 3, "encoder": True},
    "vocoder": {"weights": "vocoder.safetensors", "num_mels": 80, "upsample_initial_channel": 64,
                "upsample_rates": [4, 4, 4, 4], "upsample_kernel_sizes": [8, 8, 8, 8],
                "resblock_kernel_sizes": [3], "resblock_dilations": [1, 3]},
}


# ----------------------------------------------------------------------------
# configs
# ----------------------------------------------------------------------------
def vae_cfg(sec):
    """The dict make_golden_audio / bench_audio_torch take, from a reel
    `audio.vae` section (or an already converted dict)."""
    c = {"data_dim": 80, "embed_dim": 20, "hidden_dim": 384, "ch_mult": [1, 2, 4],
         "num_res_blocks": 2, "attn_layers": [3], "down_layers": [0], "kernel_size": 3,
         "clip_act": 256.0}
    for k in c:
        if k in sec:
            c[k] = sec[k]
    c = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in c.items()}
    c["clip_act"] = float(c["clip_act"])
    return c


def voc_cfg(sec):
    """bench_audio_torch.vocoder's cfg from a reel `audio.vocoder` section."""
    if not sec.get("snake_beta", True):
        raise ValueError("only snakebeta activations are trained here")
    nk = list(sec.get("resblock_kernel_sizes", [3, 7, 11]))
    dil = list(sec.get("resblock_dilations", [1, 3, 5]))
    return {"num_mels": int(sec.get("num_mels", 80)),
            "upsample_initial_channel": int(sec.get("upsample_initial_channel", 1536)),
            "upsample_rates": list(sec.get("upsample_rates", [4, 4, 2, 2, 2, 2])),
            "upsample_kernel_sizes": list(sec.get("upsample_kernel_sizes", [8, 8, 4, 4, 4, 4])),
            "resblock_kernel_sizes": nk, "resblock_dilation_sizes": [list(dil) for _ in nk],
            "resblock": "1", "activation": "snakebeta",
            "snake_logscale": bool(sec.get("snake_logscale", True))}


def latents_per_second(sr, vcfg, hop=256):
    return sr / (hop * 2 ** len(vcfg["down_layers"]))


def audio_section(path):
    """The `audio:` section of a reel model config if it has one, else the default."""
    if path and os.path.exists(path):
        m = common.load_model_config(path)
        if isinstance(m, dict) and isinstance(m.get("audio"), dict) and "vae" in m["audio"]:
            return m["audio"]
    return json.loads(json.dumps(AUDIO_DEFAULT))


# ----------------------------------------------------------------------------
# parameters: names, shapes, init (reel's tensor tables, state_dict order)
# ----------------------------------------------------------------------------
def vae_param_specs(cfg, encoder=True):
    """[(name, shape, kind)] of VAE.state_dict(); kind: 'mp' (MPConv1D weight),
    'gain' (learnable_gain, a scalar), 'mean' / 'std' (mel statistics).
    The order is VAE.state_dict()'s (reel's own table lists the same names
    in another order; names and shapes are what must match)."""
    D, E, H, k = cfg["data_dim"], cfg["embed_dim"], cfg["hidden_dim"], cfg["kernel_size"]
    mult, nrb = cfg["ch_mult"], cfg["num_res_blocks"]
    S = [("data_mean", [1, D, 1], "mean"), ("data_std", [1, D, 1], "std")]

    def mp(name, cout, cin, kk):
        S.append((name, [cout, cin, kk], "mp"))

    def res(p, cin, cout, kk):
        mp(p + "conv1.weight", cout, cin, kk)
        mp(p + "conv2.weight", cout, cout, kk)
        if cin != cout:
            mp(p + "nin_shortcut.weight", cout, cin, 1)

    def attn(p, ch):
        mp(p + "qkv.weight", 3 * ch, ch, 1)
        mp(p + "proj_out.weight", ch, ch, 1)

    def mid(p, ch, kk):
        res(p + "mid.block_1.", ch, ch, kk)
        attn(p + "mid.attn_1.", ch)
        res(p + "mid.block_2.", ch, ch, kk)

    if encoder:
        S.append(("encoder.learnable_gain", [], "gain"))
        mp("encoder.conv_in.weight", H, D, k)
        cin = H
        for i, m in enumerate(mult):
            for j in range(nrb):
                res(f"encoder.down.{i}.block.{j}.", cin, H * m, k)
                cin = H * m
                if i in cfg["attn_layers"]:
                    attn(f"encoder.down.{i}.attn.{j}.", cin)
            if i in cfg["down_layers"]:
                mp(f"encoder.down.{i}.downsample.conv1.weight", cin, cin, 1)
                mp(f"encoder.down.{i}.downsample.conv2.weight", cin, cin, 1)
        mid("encoder.", cin, k)
        mp("encoder.conv_out.weight", 2 * E, cin, k)
    S.append(("decoder.learnable_gain", [], "gain"))
    cin = H * mult[-1]
    mp("decoder.conv_in.weight", cin, E, k)
    mid("decoder.", cin, 3)
    for i in reversed(range(len(mult))):
        for j in range(nrb + 1):
            res(f"decoder.up.{i}.block.{j}.", cin, H * mult[i], 3)
            cin = H * mult[i]
            if i in cfg["attn_layers"]:
                attn(f"decoder.up.{i}.attn.{j}.", cin)
        if i in [d + 1 for d in cfg["down_layers"]]:
            mp(f"decoder.up.{i}.upsample.conv.weight", cin, cin, 3)
    mp("decoder.conv_out.weight", D, cin, k)
    return S


def voc_param_specs(cfg):
    """[(name, shape, kind)] of BigVGANVocoder.state_dict() after
    remove_weight_norm(); kind: 'w' (conv weight, fan_in = shape[1]*k),
    'wt' (ConvTranspose1d weight [in,out,k]), 'b' (bias, with its fan_in),
    'alpha' / 'beta' (SnakeBeta), 'filter' (anti-alias buffer)."""
    ch, nm = cfg["upsample_initial_channel"], cfg["num_mels"]
    S = []

    def conv(p, cout, cin, k):
        S.append((p + ".weight", [cout, cin, k], "w"))
        S.append((p + ".bias", [cout], ("b", cin * k)))

    def act(p, c):
        S.append((p + "act.alpha", [c], "alpha"))
        S.append((p + "act.beta", [c], "beta"))
        S.append((p + "upsample.filter", [1, 1, 12], "filter"))
        S.append((p + "downsample.lowpass.filter", [1, 1, 12], "filter"))

    conv("conv_pre", ch, nm, 7)
    for i, k in enumerate(cfg["upsample_kernel_sizes"]):
        S.append((f"ups.{i}.0.weight", [ch >> i, ch >> (i + 1), k], "wt"))
        S.append((f"ups.{i}.0.bias", [ch >> (i + 1)], ("b", (ch >> (i + 1)) * k)))
    nk = len(cfg["resblock_kernel_sizes"])
    for i in range(len(cfg["upsample_rates"])):
        c = ch >> (i + 1)
        for j, (k, dils) in enumerate(zip(cfg["resblock_kernel_sizes"],
                                          cfg["resblock_dilation_sizes"])):
            p = f"resblocks.{i * nk + j}."
            for m in range(len(dils)):
                conv(p + f"convs1.{m}", c, c, k)
            for m in range(len(dils)):
                conv(p + f"convs2.{m}", c, c, k)
            for m in range(2 * len(dils)):
                act(p + f"activations.{m}.", c)
    c = ch >> len(cfg["upsample_rates"])
    act("activation_post.", c)
    conv("conv_post", 1, c, 7)
    return S


def init_vae(cfg, g, mean, std):
    """Raw trainable tensors: MPConv1D weights ~ N(0,1) as MMAudio initialises
    them, gains 0; the mel statistics are buffers (no grad)."""
    P = OrderedDict()
    for name, shape, kind in vae_param_specs(cfg, True):
        if kind == "mp":
            P[name] = torch.randn(shape, generator=g).requires_grad_(True)
        elif kind == "gain":
            P[name] = torch.zeros(shape).requires_grad_(True)
        elif kind == "mean":
            P[name] = mean.reshape(shape).clone().float()
        else:
            P[name] = std.reshape(shape).clone().float()
    return P


def init_voc(cfg, g):
    """PyTorch's default conv init (what BigVGAN's convs keep, see
    README-audio.md), SnakeBeta log-alpha/beta 0, kaiser-sinc filters."""
    P = OrderedDict()
    filt = mga.kaiser_sinc_filter1d(0.25, 0.3, 12)
    for name, shape, kind in voc_param_specs(cfg):
        if kind == "w":
            b = 1.0 / math.sqrt(shape[1] * shape[2])
            t = (torch.rand(shape, generator=g) * 2 - 1) * b
        elif kind == "wt":   # ConvTranspose1d: fan_in = weight.size(1) * k
            b = 1.0 / math.sqrt(shape[1] * shape[2])
            t = (torch.rand(shape, generator=g) * 2 - 1) * b
        elif isinstance(kind, tuple):
            b = 1.0 / math.sqrt(kind[1])
            t = (torch.rand(shape, generator=g) * 2 - 1) * b
        elif kind in ("alpha", "beta"):
            t = torch.zeros(shape)
        else:
            P[name] = filt.clone()
            continue
        P[name] = t.requires_grad_(True)
    return P


def vae_weights(P, cfg):
    """The dict the reference forward runs (and reel loads): MPConv1D weights
    after remove_weight_norm(), differentiable in the raw tensors, with the
    learnable gains folded into conv_out (see below)."""
    W = OrderedDict()
    for name, shape, kind in vae_param_specs(cfg, "encoder.conv_in.weight" in P):
        W[name] = mga.mp_remove_weight_norm(P[name]) if kind == "mp" else P[name]
    # The reference functions skip the gain when it is exactly 1
    # (bench_audio_torch.mpconv: `if gain != 1.0`) and the decoder reads it as
    # a Python float, so a gain initialised at 0 would never get a gradient.
    # The trained gains are therefore folded into the conv_out weights they
    # multiply: conv(x, w * (g + 1)) with learnable_gain = 0 in the file is
    # the same math as the reference's conv(x, w, gain = g + 1).
    for part in ("encoder", "decoder"):
        gname = part + ".learnable_gain"
        if gname in P:
            g = P[gname]
            W[part + ".conv_out.weight"] = W[part + ".conv_out.weight"] * (g + 1.0)
            W[gname] = torch.zeros_like(g).detach()
    return W


@torch.no_grad()
def force_weight_norm(P, cfg):
    """MMAudio's forced weight normalisation of the raw weights after a step."""
    for name, shape, kind in vae_param_specs(cfg, True):
        if kind == "mp":
            fan = shape[1] * shape[2]
            P[name].copy_(mga.mp_remove_weight_norm(P[name]) * math.sqrt(fan))


# ----------------------------------------------------------------------------
# forward passes (one item at a time: the reference functions are unbatched)
# ----------------------------------------------------------------------------
def mel_of(wave, mb, win):
    """wave [N] or [1,N] -> log10 mel [80, N // 256] (MelConverter, 16k)."""
    w = wave.reshape(1, -1)
    return mga.mel_forward(MEL_16K, mb, win, w)[0]


def vae_encode_moments(W, cfg, mel):
    """mel [D, T] (T even) -> (mu, logvar clamped) [E, T/2]."""
    mom = mga.vae_encode(W, cfg, mel, {})
    E = mom.shape[0] // 2
    return mom[:E], mom[E:].clamp(-30.0, 20.0)


def vae_decode(W, cfg, z):
    return B.vae_decode(W, cfg, z)


def vocode(W, cfg, mel):
    return B.vocoder(W, cfg, mel)


def _as_tensors(W):
    if isinstance(W, str):
        W = common.st_load(W, torch.float32)[0]
    return {k: (torch.as_tensor(v).float() if not isinstance(v, torch.Tensor) else v.float())
            for k, v in W.items()}


_MEL_BUF = {}


def mel_buffers():
    if "b" not in _MEL_BUF:
        _MEL_BUF["b"] = mga.mel_buffers(MEL_16K)
    return _MEL_BUF["b"]


@torch.no_grad()
def encode_audio(W_or_module, cfg, wave_16k, sr=16000):
    """The audio VAE latent of a clip, as the DiT stage trains on it.

    W_or_module: the exported audio_vae.safetensors (a path) or its tensors
    ({name: tensor}, e.g. common.st_load(path, torch.float32)[0]) - the
    weights after remove_weight_norm(), as reel loads them; or the raw
    training dict of a checkpoint (it has the same names; detected by
    `raw=True` in cfg).
    cfg: the reel `audio.vae` section (dict) or vae_cfg(...) of it.
    wave_16k: float [samples] (or [1, samples]) at 16 kHz.

    Returns float32 [T, embed_dim] (channel-last, the DiT's audio latent
    layout): the posterior mean z = mu (no sampling), with
    T = floor(samples / 16000 * latents_per_second + 1e-9)
    (latents_per_second = 16000 / (256 * 2^len(down_layers)) = 31.25), the
    count reel_model_audio_latents gives for that duration: the mel of the
    clip (MelConverter 16k, N // 256 frames) encodes to N // 512 latents,
    extra ones are trimmed and a short clip is zero-padded at the end
    before encoding. E.g. 49000 samples (3.0625 s) -> [95, embed_dim].
    """
    c = vae_cfg(cfg)
    W = _as_tensors(W_or_module)
    if cfg.get("raw"):
        W = vae_weights(W, c)
    x = torch.as_tensor(np.asarray(wave_16k, np.float32)).reshape(-1)
    n = x.numel()
    lps = latents_per_second(sr, c)
    T = max(1, int(math.floor(n / sr * lps + 1e-9)))
    per = int(round(sr / lps))                 # samples per latent (512)
    need = max(T * per, 1024)
    if n < need:
        x = F.pad(x, (0, need - n))
    mb, win = mel_buffers()
    mel = mel_of(x, mb, win)
    f = 2 ** len(c["down_layers"])
    Tm = mel.shape[1] // f * f
    mu, _ = vae_encode_moments(W, c, mel[:, :Tm])
    mu = mu[:, :T]
    if mu.shape[1] < T:
        mu = F.pad(mu, (0, T - mu.shape[1]))
    return mu.t().contiguous().numpy().astype(np.float32)


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------
class AudioData:
    """All clips' audio of a synth dataset (float32 [N, S]), their whole-clip
    log10 mels [N, 80, F] and impact times; deterministic windows per step."""

    def __init__(self, data_dir, max_clips=None):
        aud, imp = [], []
        for p in common.list_shards(data_dir):
            with np.load(p, allow_pickle=False) as z:
                aud.append(z["audio"].astype(np.float32))
                imp.append(z["impact_times"])
            if max_clips and sum(a.shape[0] for a in aud) >= max_clips:
                break
        self.audio = np.concatenate(aud)[:max_clips]
        it = np.concatenate([np.pad(i, ((0, 0), (0, max(x.shape[1] for x in imp) - i.shape[1])),
                                    constant_values=np.nan) for i in imp])[:max_clips]
        self.impacts = [r[np.isfinite(r)] for r in it]
        mb, win = mel_buffers()
        with torch.no_grad():
            self.mels = torch.stack([mel_of(torch.from_numpy(a), mb, win) for a in self.audio])
        self.n, self.F = self.mels.shape[0], self.mels.shape[2]
        self.F2 = self.F // 2 * 2      # even frame count: what the VAE sees
        self.dec = None                # VAE reconstructions (vocoder phase)

    def stats(self, min_std):
        m = self.mels.permute(1, 0, 2).reshape(self.mels.shape[1], -1).double()
        return m.mean(1).float(), m.std(1).clamp(min=min_std).float()

    def _start(self, rng, k, length, limit, impact_p):
        """A window start (frames) of `length` in [0, limit), around an impact
        of clip k with probability impact_p."""
        hi = limit - length
        if hi <= 0:
            return 0
        imp = self.impacts[k]
        if imp.size and rng.random() < impact_p:
            t = float(imp[int(rng.integers(imp.size))])
            f = int(t * MEL_16K["sampling_rate"] / MEL_16K["hop_size"])
            lo_s, hi_s = f - length + 4, f - 2
            s = int(rng.integers(min(lo_s, hi_s), max(lo_s, hi_s) + 1))
            return min(max(s, 0), hi)
        return int(rng.integers(hi + 1))

    def vae_batch(self, seed, step, batch, lengths, impact_p):
        """[(mel [80, L])] with L even; one length per step."""
        rng = common.step_rng(seed, step, 1)
        L = int(lengths[int(rng.integers(len(lengths)))])
        L = min(L, self.F2) // 2 * 2
        out = []
        for _ in range(batch):
            k = int(rng.integers(self.n))
            s = self._start(rng, k, L, self.F2, impact_p)
            s -= s % 2
            out.append(self.mels[k, :, s:s + L])
        return out

    def voc_batch(self, seed, step, batch, lengths, impact_p, vae_mix):
        """[(mel [80, L], wave [L*256])]: mel from the clip's whole mel (or the
        VAE's reconstruction of it), wave the matching samples."""
        rng = common.step_rng(seed, step, 1)
        L = int(lengths[int(rng.integers(len(lengths)))])
        hop = MEL_16K["hop_size"]
        limit = self.F2 if self.dec is not None else self.F
        out = []
        for _ in range(batch):
            k = int(rng.integers(self.n))
            s = self._start(rng, k, L, limit, impact_p)
            use_dec = self.dec is not None and rng.random() < vae_mix
            mel = (self.dec if use_dec else self.mels)[k, :, s:s + L]
            wav = torch.from_numpy(self.audio[k, s * hop:(s + L) * hop])
            if wav.numel() < L * hop:
                wav = F.pad(wav, (0, L * hop - wav.numel()))
            out.append((mel, wav))
        return out


# ----------------------------------------------------------------------------
# losses
# ----------------------------------------------------------------------------
STFT_RES = ((1024, 256), (512, 128), (256, 64), (128, 32))


def stft_mag(x, n_fft, hop):
    win = torch.hann_window(n_fft)
    s = torch.stft(x, n_fft, hop_length=hop, win_length=n_fft, window=win, center=True,
                   pad_mode="reflect", return_complex=True)
    return (s.real.pow(2) + s.imag.pow(2) + 1e-9).sqrt()


def mrstft(preds, tgts):
    """Multi-resolution STFT loss over a list of (pred, target) waves:
    spectral convergence (over the whole batch, so a silent window does not
    divide by ~0) and L1 of log magnitudes (floor 1e-5), averaged over
    STFT_RES."""
    sc, lm = 0.0, 0.0
    for n_fft, hop in STFT_RES:
        num = den = 0.0
        lms = 0.0
        for pred, tgt in zip(preds, tgts):
            p, t = stft_mag(pred, n_fft, hop), stft_mag(tgt, n_fft, hop)
            num = num + (t - p).pow(2).sum()
            den = den + t.pow(2).sum()
            lms = lms + (torch.log(p.clamp(min=1e-5)) - torch.log(t.clamp(min=1e-5))).abs().mean()
        sc = sc + (num / (den + 1.0)).sqrt()
        lm = lm + lms / len(preds)
    return sc / len(STFT_RES), lm / len(STFT_RES)


def vae_losses(P, cfg, mels, gen, a):
    W = vae_weights(P, cfg)
    std = P["data_std"].view(-1, 1)
    l1 = l2 = kl = 0.0
    for mel in mels:
        mu, logvar = vae_encode_moments(W, cfg, mel)
        eps = torch.randn(mu.shape, generator=gen)
        z = mu + torch.exp(0.5 * logvar) * eps
        d = (vae_decode(W, cfg, z) - mel) / std
        l1 = l1 + d.abs().mean()
        l2 = l2 + d.pow(2).mean()
        kl = kl + 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
    n = len(mels)
    l1, l2, kl = l1 / n, l2 / n, kl / n
    loss = l1 + a.vae_l2 * l2 + a.kl * kl
    return loss, {"l1": float(l1), "l2": float(l2), "kl": float(kl)}


def voc_losses(P, cfg, items, a):
    mb, win = mel_buffers()
    ml = wl = 0.0
    ys = []
    for mel, wav in items:
        y = vocode(P, cfg, mel)
        ys.append(y)
        ml = ml + (mel_of(y, mb, win) - mel_of(wav, mb, win)).abs().mean()
        wl = wl + (y - wav).abs().mean()
    n = len(items)
    sc, lm = mrstft(ys, [w for _, w in items])
    ml, wl = ml / n, wl / n
    loss = a.voc_sc * sc + lm + a.voc_mel * ml + a.voc_wave * wl
    return loss, {"sc": float(sc), "logmag": float(lm), "mel_l1": float(ml), "wave_l1": float(wl)}


def phase_lr(lr, warmup, steps, step):
    w = max(1, min(warmup, steps // 10 or 1))
    if step < w:
        return lr * (step + 1) / w
    p = (step - w) / max(1, steps - w)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, p))))


# ----------------------------------------------------------------------------
# evaluation (held-out clips, exported / rounded weights)
# ----------------------------------------------------------------------------
def env_onset(x, t, lo=None, sr=16000, frame=32, frac=0.25):
    """Onset of the tone at impact t (s) in wave x: the first 2 ms frame in
    [max(t - 0.0625, lo), t + 0.1] whose peak |x| exceeds frac x the peak in
    [t, t + 0.1]. -> seconds, or None when nothing sounds there."""
    start = t - 0.0625 if lo is None else max(t - 0.0625, lo)
    a, b = int(max(0, start * sr)), int(min(len(x), (t + 0.1) * sr))
    seg = np.abs(x[a:b])
    if seg.size < frame:
        return None
    nf = seg.size // frame
    env = seg[:nf * frame].reshape(nf, frame).max(1)
    t0 = int((t * sr - a) // frame)
    peak = env[max(0, t0):].max() if t0 < nf else 0.0
    if peak < 1e-3:
        return None
    i = int(np.argmax(env > frac * peak))
    return (a + i * frame) / sr


@torch.no_grad()
def evaluate(VW, vcfg, GW, gcfg, data, n, fps=16):
    """Round trip wave -> mel -> VAE (z = mu) -> mel -> vocoder on held-out clips."""
    mb, win = mel_buffers()
    sr = MEL_16K["sampling_rate"]
    r = {"vae_mel_l1": [], "vae_mel_l1_sound": [], "voc_mel_l1": [], "rt_mel_l1": [],
         "silence_max_abs": 0.0, "silence_rms": [], "onset_err_ms": [], "onset_err_gt_ms": [],
         "missed": 0, "impacts": 0, "mu": [], "tone_rms_ratio": [], "pitch_ok": []}
    for k in range(min(n, data.n)):
        wav = torch.from_numpy(data.audio[k])
        mel = data.mels[k][:, :data.F2]
        mu, _ = vae_encode_moments(VW, vcfg, mel)
        r["mu"].append(mu)
        dec = vae_decode(VW, vcfg, mu)
        sound = mel.max(0).values > -4.9
        r["vae_mel_l1"].append(float((dec - mel).abs().mean()))
        if bool(sound.any()):
            r["vae_mel_l1_sound"].append(float((dec - mel)[:, sound].abs().mean()))
        yv = vocode(GW, gcfg, mel)
        yr = vocode(GW, gcfg, dec)
        tgt = wav[:yr.numel()]
        r["voc_mel_l1"].append(float((mel_of(yv, mb, win) - mel_of(tgt, mb, win)).abs().mean()))
        r["rt_mel_l1"].append(float((mel_of(yr, mb, win) - mel_of(tgt, mb, win)).abs().mean()))
        # silence: samples whose target is 0 for +-0.1 s
        t = tgt.numpy()
        loud = np.convolve((np.abs(t) > 0).astype(np.float32), np.ones(3201, np.float32), "same") > 0
        y = yr.numpy()
        if (~loud).any():
            r["silence_max_abs"] = max(r["silence_max_abs"], float(np.abs(y[~loud]).max()))
            r["silence_rms"].append(float(np.sqrt(np.mean(y[~loud] ** 2))))
        imps = np.sort(data.impacts[k])
        for i, ti in enumerate(imps):
            # an impact right after another one starts inside its tone: no clean onset
            if ti > len(t) / sr - 0.1 or (i and ti - imps[i - 1] < 0.15):
                continue
            r["impacts"] += 1
            # loudness and pitch of the first 100 ms of the tone
            a0 = int(ti * sr)
            if a0 + 1600 <= len(t):
                xs, ys = t[a0:a0 + 1600], y[a0:a0 + 1600]
                r["tone_rms_ratio"].append(float(np.sqrt((ys ** 2).mean() / max((xs ** 2).mean(), 1e-12))))
                fx = np.argmax(np.abs(np.fft.rfft(xs))) * sr / 1600.0
                fy = np.argmax(np.abs(np.fft.rfft(ys))) * sr / 1600.0
                r["pitch_ok"].append(float(abs(fy - fx) <= 0.06 * fx))
            lo = imps[i - 1] + 0.125 if i else None    # after the previous tone
            og, oy = env_onset(t, ti, lo), env_onset(y, ti, lo)
            if og is not None:
                r["onset_err_gt_ms"].append(1000 * (og - ti))
            if oy is None:
                r["missed"] += 1
            else:
                r["onset_err_ms"].append(1000 * (oy - ti))
    mu = torch.cat(r.pop("mu"), dim=1).double()
    e = np.abs(np.array(r["onset_err_ms"] or [0.0]))
    frame_ms = 1000.0 / fps
    out = {"clips": min(n, data.n),
           "vae_mel_l1": float(np.mean(r["vae_mel_l1"])),
           "vae_mel_l1_sounding_frames": float(np.mean(r["vae_mel_l1_sound"] or [0.0])),
           "vocoder_mel_l1": float(np.mean(r["voc_mel_l1"])),
           "roundtrip_mel_l1": float(np.mean(r["rt_mel_l1"])),
           "silence_max_abs": r["silence_max_abs"],
           "silence_rms": float(np.mean(r["silence_rms"] or [0.0])),
           "impacts": r["impacts"], "onsets_missed": r["missed"],
           "onset_err_ms_mean_abs": float(e.mean()), "onset_err_ms_max_abs": float(e.max()),
           "onset_within_1_frame": float(np.mean(e <= frame_ms)) if r["onset_err_ms"] else 0.0,
           "onset_within_half_frame": float(np.mean(e <= frame_ms / 2)) if r["onset_err_ms"] else 0.0,
           "tone_rms_ratio_median": float(np.median(r["tone_rms_ratio"] or [0.0])),
           "tone_pitch_correct": float(np.mean(r["pitch_ok"] or [0.0])),
           "onset_err_ms_mean_abs_ground_truth": float(np.mean(np.abs(r["onset_err_gt_ms"] or [0.0]))),
           "latent_mean": mu.mean(1).tolist(), "latent_std": mu.std(1).tolist()}
    return out


# ----------------------------------------------------------------------------
# export
# ----------------------------------------------------------------------------
def export_tensors(P, kind, vcfg):
    """name -> f32 tensor of the file reel loads (state_dict order)."""
    if kind == "vae":
        W = vae_weights(P, vcfg)
    else:
        W = P
    return OrderedDict((k, v.detach().float().clone()) for k, v in W.items())


def rounded(T, dtype):
    return OrderedDict((k, v.to(dtype).float()) for k, v in T.items())


def write_check_files(out, VW, vsec, vcfg, GW, gsec, gcfg, data, golden):
    """Golden-format files (README-audio.md) with the trained (rounded) weights
    and this code's outputs, for `reel check`."""
    mb, win = mel_buffers()
    ref_v = mga.base_meta(golden, "mmaudio_vae16k.safetensors")
    ref_g = mga.base_meta(golden, "bigvgan16k.safetensors")
    k = next((i for i in range(data.n) if data.impacts[i].size), 0)
    mel = data.mels[k][:, :min(data.F2, 128)]
    with torch.no_grad():
        mids = {}
        mom = mga.vae_encode(VW, vcfg, mel, mids)
        E = mom.shape[0] // 2
        z = mom[:E]
        dec = B.vae_decode(VW, vcfg, z)
        wave = B.vocoder(GW, gcfg, dec[:, :64])
    T = OrderedDict(("weights." + n, v) for n, v in VW.items())
    T["in.mel"] = mel[None]
    T["out.enc_moments"] = mom[None]
    T["out.mean"] = mom[None, :E]
    T["out.logvar"] = mom[None, E:].clamp(-30.0, 20.0)
    T["in.z"] = z[None].contiguous()
    T["out.dec"] = dec[None]
    c = dict(vcfg)
    c["encoder_included"] = True
    meta = {"config": json.dumps(c, sort_keys=True), "reference": ref_v["reference"],
            "description": "trained reel default audio VAE (scripts/train/train_audio.py); "
            "outputs by the training code's forward (make_golden_audio / bench_audio_torch)",
            "weight_norm_removed": "true", "dtype": "F32 (weights rounded to the export dtype)",
            "generator": "scripts/train/train_audio.py --check-files"}
    pv = os.path.join(out, "check_audio_vae.safetensors")
    mga.write_safetensors(pv, T, meta)
    T = OrderedDict(("weights." + n, v) for n, v in GW.items())
    T["in.mel"] = dec[None, :, :64].contiguous()
    T["out.wave"] = wave.reshape(1, 1, -1)
    gc = dict(gcfg)
    gc["hop"] = int(np.prod(gcfg["upsample_rates"]))
    meta = {"config": json.dumps(gc, sort_keys=True), "reference": ref_g["reference"],
            "description": "trained reel default vocoder (scripts/train/train_audio.py); "
            "in.mel = the trained VAE's decode of a held-out clip",
            "weight_norm_removed": "true", "dtype": "F32 (weights rounded to the export dtype)",
            "generator": "scripts/train/train_audio.py --check-files"}
    pg = os.path.join(out, "check_vocoder.safetensors")
    mga.write_safetensors(pg, T, meta)
    return pv, pg


def yaml_section(sec):
    v, g = sec["vae"], sec["vocoder"]

    def fl(x):
        return "[" + ", ".join(str(i) for i in x) + "]"
    lines = ["audio:", "  sample_rate: %d" % sec.get("sample_rate", 16000), "  vae:",
             "    weights: %s" % v.get("weights", "audio_vae.safetensors"),
             "    weight_norm_removed: true"]
    for key in ("data_dim", "embed_dim", "hidden_dim"):
        lines.append("    %s: %d" % (key, v[key]))
    for key in ("ch_mult",):
        lines.append("    %s: %s" % (key, fl(v[key])))
    lines.append("    num_res_blocks: %d" % v["num_res_blocks"])
    lines += ["    attn_layers: %s" % fl(v["attn_layers"]), "    down_layers: %s" % fl(v["down_layers"]),
              "    kernel_size: %d" % v["kernel_size"], "    encoder: true", "  vocoder:",
              "    weights: %s" % g.get("weights", "vocoder.safetensors")]
    for key in ("num_mels", "upsample_initial_channel"):
        lines.append("    %s: %d" % (key, g[key]))
    for key in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes",
                "resblock_dilations"):
        lines.append("    %s: %s" % (key, fl(g[key])))
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------
def parse(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--vae-steps", type=int, default=2000)
    ap.add_argument("--voc-steps", type=int, default=9000)
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "reel-default.yaml"),
                    help="a reel model config; its audio: section is used if it has one")
    common.add_data_args(ap)
    ap.add_argument("--max-clips", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--min-std", type=float, default=0.5, help="floor of data_std (log10 units)")
    ap.add_argument("--vae-batch", type=int, default=8)
    ap.add_argument("--vae-frames", default="64,128,186", help="mel window lengths (even)")
    ap.add_argument("--vae-lr", type=float, default=2e-3)
    ap.add_argument("--vae-l2", type=float, default=0.5)
    ap.add_argument("--kl", type=float, default=1e-2)
    ap.add_argument("--voc-batch", type=int, default=4)
    ap.add_argument("--voc-frames", default="32,48,62", help="mel frames per window (x256 samples)")
    ap.add_argument("--voc-lr", type=float, default=2e-3)
    ap.add_argument("--voc-sc", type=float, default=5.0, help="spectral convergence weight")
    ap.add_argument("--voc-mel", type=float, default=2.0)
    ap.add_argument("--voc-wave", type=float, default=0.0)
    ap.add_argument("--voc-vae-mix", type=float, default=0.3)
    ap.add_argument("--impact-p", type=float, default=0.8)
    ap.add_argument("--warmup", type=int, default=100)
    common.add_run_args(ap, eval_n=16)
    ap.add_argument("--check-files", action="store_true",
                    help="also write golden-format check_*.safetensors for `reel check`")
    ap.add_argument("--golden", default=os.environ.get("REEL_GOLDEN_DIR") or
                    os.path.join(os.path.dirname(REPO), "shared", "golden"))
    ap.add_argument("--test-sigterm-at", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--test-sigkill-at", type=int, default=-1, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    a.vae_frames = [int(f) for f in str(a.vae_frames).split(",")]
    a.voc_frames = [int(f) for f in str(a.voc_frames).split(",")]
    return a


def save_audio_vae(a, vcfg, VW, meta):
    """OUT/audio_vae.safetensors (--dtype): the tensors reel loads."""
    meta = dict(meta, config=json.dumps(dict(vcfg, encoder_included=True), sort_keys=True),
                weight_norm_removed="true", mel=json.dumps(MEL_16K))
    common.st_save(os.path.join(a.out, "audio_vae.safetensors"), VW, meta, DTYPES[a.dtype])


def main(argv=None):
    a = parse(argv)
    os.makedirs(a.out, exist_ok=True)
    common.setup_torch(a.threads, a.seed)
    sec = audio_section(a.config)
    vcfg, gcfg = vae_cfg(sec["vae"]), voc_cfg(sec["vocoder"])
    assert int(np.prod(gcfg["upsample_rates"])) == MEL_16K["hop_size"], "vocoder hop must be 256"
    assert vcfg["data_dim"] == gcfg["num_mels"] == MEL_16K["num_mels"]
    data_root = os.path.join(os.path.dirname(os.path.abspath(a.out)), "data")
    a.data = a.data or os.path.join(data_root, "train")
    a.heldout = a.heldout or os.path.join(data_root, "heldout")
    common.ensure_dataset(a.data, a.n_train, a.data_seed, "train")
    common.ensure_dataset(a.heldout, a.n_heldout, a.heldout_seed, "heldout")
    t0 = time.perf_counter()
    data = AudioData(a.data, a.max_clips or a.n_train)
    mean, std = data.stats(a.min_std)
    print("data: %d clips, mel %s (%.1fs)" % (data.n, list(data.mels.shape[1:]),
                                             time.perf_counter() - t0), flush=True)

    g = torch.Generator()
    g.manual_seed(a.seed)
    PV = init_vae(vcfg, g, mean, std)
    PG = init_voc(gcfg, g)
    P = OrderedDict([("vae." + k, v) for k, v in PV.items()] + [("voc." + k, v) for k, v in PG.items()])
    vae_train = [v for v in PV.values() if v.requires_grad]
    voc_train = [v for v in PG.values() if v.requires_grad]
    opt = torch.optim.AdamW([{"params": vae_train}, {"params": voc_train}], lr=a.vae_lr,
                            betas=(0.9, 0.99), weight_decay=0.0)
    ck, step, _, log = common.start_run(a.out, P, opt, a.resume, a.save_every)
    args_rec = {k: v for k, v in vars(a).items() if not k.startswith("test_")}
    total = a.vae_steps + a.voc_steps

    n_done, last = {"vae": 0, "voc": 0}, {}
    el = {"vae": 0.0, "voc": 0.0}
    while step < total:
        t0, c0 = time.perf_counter(), time.process_time()
        phase = "vae" if step < a.vae_steps else "voc"
        if phase == "vae":
            lr = phase_lr(a.vae_lr, a.warmup, a.vae_steps, step)
            opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = lr, 0.0
            mels = data.vae_batch(a.seed, step, a.vae_batch, a.vae_frames, a.impact_p)
            loss, parts = vae_losses(PV, vcfg, mels, common.step_generator(a.seed, step, 2), a)
            params = vae_train
        else:
            if data.dec is None and a.voc_vae_mix > 0 and a.vae_steps > 0:
                with torch.no_grad():
                    VW = vae_weights(PV, vcfg)
                    data.dec = torch.stack([vae_decode(VW, vcfg, vae_encode_moments(
                        VW, vcfg, data.mels[k][:, :data.F2])[0]) for k in range(data.n)])
            lr = phase_lr(a.voc_lr, a.warmup, a.voc_steps, step - a.vae_steps)
            opt.param_groups[0]["lr"], opt.param_groups[1]["lr"] = 0.0, lr
            items = data.voc_batch(a.seed, step, a.voc_batch, a.voc_frames, a.impact_p, a.voc_vae_mix)
            loss, parts = voc_losses(PG, gcfg, items, a)
            params = voc_train
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(params, a.clip_grad))
        opt.step()
        if phase == "vae":
            force_weight_norm(PV, vcfg)
        step += 1
        n_done[phase] += 1
        dt = time.perf_counter() - t0
        el[phase] += dt
        last = dict(step=step, phase=phase, loss=float(loss), lr=lr, grad_norm=gn, sec=dt,
                    cpu=time.process_time() - c0, **parts)
        if step % a.log_every == 0 or step in (1, a.vae_steps, total):
            log.write(**last)
            print("step %5d %s loss %.4f  %s  lr %.2e  %.2fs/step" % (
                step, phase, last["loss"], "  ".join("%s %.4f" % kv for kv in parts.items()), lr, dt),
                flush=True)
        if step == a.vae_steps and not a.no_export:
            # the VAE is final here: the DiT stage can encode its latents
            # while the vocoder trains (the end of the run writes it again,
            # with the held-out numbers in its metadata)
            save_audio_vae(a, vcfg, export_tensors(PV, "vae", vcfg), {"stage": "audio_vae"})
            print("wrote %s (VAE phase done)" % os.path.join(a.out, "audio_vae.safetensors"),
                  flush=True)
        if step == a.test_sigkill_at:
            os.kill(os.getpid(), 9)
        if step == a.test_sigterm_at:
            os.kill(os.getpid(), 15)
        if ck.due(step) or ck.stop_requested or step == total:
            ck.save(step, P, opt, {"args": args_rec})
        if ck.stop_requested:
            print("stopped at step %d (checkpoint saved); continue with --resume" % step)
            return 0
    for ph in ("vae", "voc"):
        if n_done[ph]:
            print("%s: %d steps in %.1fs (%.3fs/step)" % (ph, n_done[ph], el[ph], el[ph] / n_done[ph]))
    if a.no_export:
        return 0

    dt = DTYPES[a.dtype]
    VW = export_tensors(PV, "vae", vcfg)
    GW = export_tensors(PG, "voc", gcfg)
    VWr, GWr = rounded(VW, dt), rounded(GW, dt)
    held = AudioData(a.heldout, a.n_heldout)
    ev = evaluate(VWr, vcfg, GWr, gcfg, held, a.eval_n)
    print("held-out (%d clips, %s weights): %s" % (ev["clips"], a.dtype, json.dumps(
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in ev.items()
         if not k.startswith("latent_")})))
    recs = log.records()
    fin = {}
    for ph in ("vae", "voc"):
        tail = [r for r in recs if r.get("phase") == ph][-10:]
        fin[ph] = (sum(r["loss"] for r in tail) / len(tail)) if tail else None
    sec_out = json.loads(json.dumps(sec))
    sec_out["vae"]["weight_norm_removed"] = True
    sec_out["vae"]["encoder"] = True
    stats = {"stage": "audio", "steps": step, "vae_steps": a.vae_steps, "voc_steps": a.voc_steps,
             "heldout": dict(ev, dir=a.heldout, seed=a.heldout_seed),
             "train_data": {"dir": a.data, "seed": a.data_seed, "n": data.n,
                            "data_mean": mean.tolist(), "data_std": std.tolist()},
             "final_loss_mean_last10_logged": fin,
             "sec_per_step": {ph: (el[ph] / n_done[ph]) if n_done[ph] else None for ph in el},
             "audio_config": sec_out, "audio_yaml": yaml_section(sec_out),
             "vae_config": vcfg, "vocoder_config": gcfg, "mel": MEL_16K,
             "latents_per_second": latents_per_second(16000, vcfg),
             "args": args_rec, "torch": torch.__version__}
    common.write_json_atomic(os.path.join(a.out, "stats.json"), stats)
    meta_common = {"format": "pt", "training": json.dumps({"steps": step, "args": args_rec}),
                   "heldout": json.dumps({k: v for k, v in ev.items() if not k.startswith("latent_")})}
    save_audio_vae(a, vcfg, VW, dict(meta_common, stage="audio_vae",
                                     latent_mean=json.dumps(ev["latent_mean"]),
                                     latent_std=json.dumps(ev["latent_std"])))
    common.st_save(os.path.join(a.out, "vocoder.safetensors"), GW,
                   dict(meta_common, stage="vocoder", config=json.dumps(gcfg, sort_keys=True),
                        weight_norm_removed="true"), dt)
    if a.check_files:
        for p in write_check_files(a.out, VWr, sec["vae"], vcfg, GWr, sec["vocoder"], gcfg, held,
                                   a.golden):
            print("wrote %s" % p)
    print(yaml_section(sec_out), end="")
    print("wrote %s, %s and %s" % tuple(os.path.join(a.out, f) for f in (
        "audio_vae.safetensors", "vocoder.safetensors", "stats.json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
