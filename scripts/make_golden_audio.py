#!/usr/bin/python3
"""Alternate-configuration golden files for the MMAudio 16 kHz audio stack
(mel converter, mel VAE encoder+decoder, BigVGAN vocoder), in the format of
/work/shared/golden/README-audio.md.

    make_golden_audio.py --verify GOLDEN_DIR   # reproduce the shipped files
    make_golden_audio.py --out DIR             # write alt_mel, alt_mmaudio_vae, alt_bigvgan

The math is an independent PyTorch implementation written from MMAudio's
code (mmaudio/ext/mel_converter.py, mmaudio/ext/autoencoder/*,
mmaudio/ext/bigvgan/*): the VAE decoder and the vocoder building blocks come
from scripts/bench_audio_torch.py; the mel converter, the librosa mel
filterbank (numpy port), the VAE encoder, MPConv1D weight-norm removal and
the alias-free kaiser-sinc filter are here. --verify first proves this code
against the official vectors (every out.* within README-audio.md's
tolerances, plus the buffers and the weight-norm removal); --out then writes
files for other configurations, computed by this code, so they check reel
against this implementation. Output bytes are deterministic (fixed seeds,
2 threads, CPU float32)."""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_audio_torch as B  # noqa: E402  (decoder + vocoder reference)

read_safetensors = B.read_safetensors

MMAUDIO = "hkchengrex/MMAudio@974010a026c731054592d8f777218bd9d85a6c24"
GENERATOR = (f"scripts/make_golden_audio.py --out (torch {torch.__version__}, CPU, float32, "
             "2 threads); not the official code: --verify checks it against the shipped files")
ALT_NOTE = ("ALTERNATE CONFIG written by scripts/make_golden_audio.py (its own PyTorch "
            "implementation, verified against the shipped reference files with --verify). ")
TOL = {"out.mel": 5e-4, "mid.mel_linear": 1e-5, "out.enc_moments": 5e-5, "out.mean": 5e-5,
       "out.logvar": 5e-5, "out.dec": 1e-4, "out.wave": 2e-5}


def write_safetensors(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().contiguous().numpy()
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


# ------------------------------------------------- librosa mel() numpy port

def hz_to_mel(f):
    f = np.asanyarray(f, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = f / f_sp
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    if f.ndim:
        t = f >= min_log_hz
        mels[t] = min_log_mel + np.log(f[t] / min_log_hz) / logstep
    elif f >= min_log_hz:
        mels = min_log_mel + np.log(f / min_log_hz) / logstep
    return mels


def mel_to_hz(m):
    m = np.asanyarray(m)
    f_sp = 200.0 / 3
    freqs = f_sp * m
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
    t = m >= min_log_mel
    freqs[t] = min_log_hz * np.exp(logstep * (m[t] - min_log_mel))
    return freqs


def librosa_mel(sr, n_fft, n_mels, fmin, fmax):
    """librosa.filters.mel(htk=False, norm='slaney', dtype=float32)."""
    weights = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    fftfreqs = np.fft.rfftfreq(n=n_fft, d=1.0 / sr)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    for i in range(n_mels):
        lower = -ramps[i] / fdiff[i]
        upper = ramps[i + 2] / fdiff[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    enorm = 2.0 / (mel_f[2:n_mels + 2] - mel_f[:n_mels])
    weights *= enorm[:, np.newaxis]
    return weights


# ------------------------------------------------------------ MelConverter

def mel_buffers(c):
    mb = torch.from_numpy(librosa_mel(c["sampling_rate"], c["n_fft"], c["num_mels"],
                                      c["fmin"], c["fmax"])).float()
    return mb, torch.hann_window(c["win_size"])


def mel_forward(c, mel_basis, window, wave, mids=None):
    """MelConverter.forward(center=False) on wave [1, N]."""
    pad = (c["n_fft"] - c["hop_size"]) // 2
    x = wave.clamp(-1.0, 1.0)
    x = F.pad(x.unsqueeze(1), [pad, pad], mode="reflect").squeeze(1)
    spec = torch.stft(x, c["n_fft"], hop_length=c["hop_size"], win_length=c["win_size"],
                      window=window, center=False, pad_mode="reflect", normalized=False,
                      onesided=True, return_complex=True)
    spec = torch.view_as_real(spec)
    mag = torch.sqrt(spec.pow(2).sum(-1) + 1e-9)
    lin = torch.matmul(mel_basis, mag)
    out = torch.log10(torch.clamp(lin, min=1e-5))
    if mids is not None:
        mids.update({"mid.padded_wave": x, "mid.stft_mag": mag, "mid.mel_linear": lin})
    return out


def synth_wave(n, sr, f1, f2, period, zero, g):
    t = torch.arange(n, dtype=torch.float64) / sr
    w = 0.5 * torch.sin(2 * math.pi * f1 * t) + 0.3 * torch.sin(2 * math.pi * f2 * t + 0.3)
    w[::period] += 0.9
    w[1::period] -= 0.4
    w = w.float() + 1e-3 * torch.randn(n, generator=g)
    w[zero[0]:zero[1]] = 0.0
    return w[None]


# ------------------------------------------------------ VAE (encoder side)

def mp_remove_weight_norm(w):
    """MPConv1D.remove_weight_norm (edm2_utils.normalize over dims 1.., / sqrt(fan_in))."""
    w = w.to(torch.float32)
    norm = torch.linalg.vector_norm(w, dim=list(range(1, w.ndim)), keepdim=True,
                                    dtype=torch.float32)
    norm = torch.add(1e-4, norm, alpha=np.sqrt(norm.numel() / w.numel()))
    w = w / norm
    return w / np.sqrt(w[0].numel())


def vae_encode(W, cfg, mel, mids):
    """VAE.encode(normalize=True) on mel [data_dim, T] -> moments [2E, T/2]."""
    clip = cfg["clip_act"]
    x = (mel - W["data_mean"].view(-1, 1)) / W["data_std"].view(-1, 1)
    mids["mid.enc.normalized_input"] = x
    h = B.mpconv(x, W["encoder.conv_in.weight"])
    mids["mid.enc.conv_in"] = h
    for i in range(len(cfg["ch_mult"])):
        for j in range(cfg["num_res_blocks"]):
            h = B.resblock(W, f"encoder.down.{i}.block.{j}.", h)
            if i in cfg["attn_layers"]:
                h = B.attnblock(W, f"encoder.down.{i}.attn.{j}.", h)
            mids[f"mid.enc.down.{i}.block.{j}"] = h
            h = h.clamp(-clip, clip)
        if i in cfg["down_layers"]:
            p = f"encoder.down.{i}.downsample."
            h = B.mpconv(h, W[p + "conv1.weight"])
            h = F.avg_pool1d(h[None], kernel_size=2, stride=2)[0]
            h = B.mpconv(h, W[p + "conv2.weight"])
            mids[f"mid.enc.down.{i}.downsample"] = h
    for n, f in (("block_1", B.resblock), ("attn_1", B.attnblock), ("block_2", B.resblock)):
        h = f(W, f"encoder.mid.{n}.", h)
        mids[f"mid.enc.mid.{n}"] = h
    h = h.clamp(-clip, clip)
    gain = W["encoder.learnable_gain"] + 1
    return B.mpconv(B.mp_silu(h), W["encoder.conv_out.weight"], gain)


def vae_decode_mids(W, cfg, z, mids):
    """Decoder1D + unnormalize, recording mid.dec.* (same ops as B.vae_decode)."""
    nl, clip = len(cfg["ch_mult"]), cfg["clip_act"]
    ups = [i + 1 for i in cfg["down_layers"]]
    h = B.mpconv(z, W["decoder.conv_in.weight"])
    mids["mid.dec.conv_in"] = h
    for n, f in (("block_1", B.resblock), ("attn_1", B.attnblock), ("block_2", B.resblock)):
        h = f(W, f"decoder.mid.{n}.", h)
        mids[f"mid.dec.mid.{n}"] = h
    h = h.clamp(-clip, clip)
    for i in reversed(range(nl)):
        for j in range(cfg["num_res_blocks"] + 1):
            h = B.resblock(W, f"decoder.up.{i}.block.{j}.", h)
            if i in cfg["attn_layers"]:
                h = B.attnblock(W, f"decoder.up.{i}.attn.{j}.", h)
            mids[f"mid.dec.up.{i}.block.{j}"] = h
            h = h.clamp(-clip, clip)
        if i in ups:
            h = B.mpconv(h.repeat_interleave(2, dim=1), W[f"decoder.up.{i}.upsample.conv.weight"])
            mids[f"mid.dec.up.{i}.upsample"] = h
    gain = float(W["decoder.learnable_gain"]) + 1.0
    h = B.mpconv(B.mp_silu(h), W["decoder.conv_out.weight"], gain)
    mids["mid.dec.raw"] = h
    return h * W["data_std"].view(-1, 1) + W["data_mean"].view(-1, 1)


def vae_cfg(c):
    cfg = {"ch_mult": [1, 2, 4], "num_res_blocks": 2, "attn_layers": [3], "down_layers": [0],
           "clip_act": 256.0}
    cfg.update({k: c[k] for k in cfg if k in c})
    return cfg


def vae_run(W, cfg, mel, z):
    mids = {}
    mom = vae_encode(W, cfg, mel, mids)
    E = mom.shape[0] // 2
    dec = vae_decode_mids(W, cfg, z, mids)
    outs = {"out.enc_moments": mom, "out.mean": mom[:E], "out.logvar": mom[E:].clamp(-30.0, 20.0),
            "out.dec": dec}
    return outs, mids


# ----------------------------------------------------------------- BigVGAN

def kaiser_sinc_filter1d(cutoff, half_width, kernel_size):
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    delta_f = 4 * half_width
    A = 2.285 * (half_size - 1) * math.pi * delta_f + 7.95
    if A > 50.0:
        beta = 0.1102 * (A - 8.7)
    elif A >= 21.0:
        beta = 0.5842 * (A - 21) ** 0.4 + 0.07886 * (A - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    if even:
        time = torch.arange(-half_size, half_size) + 0.5
    else:
        time = torch.arange(kernel_size) - half_size
    filt = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    filt /= filt.sum()
    return filt.view(1, 1, kernel_size)


def vocoder_mids(W, cfg, mel, mids):
    """BigVGANVocoder.forward (resblock '1'), recording mid.* (same ops as B.vocoder)."""
    ls = cfg["snake_logscale"]
    nk = len(cfg["resblock_kernel_sizes"])
    x = B.conv(W, "conv_pre", mel)
    mids["mid.conv_pre"] = x
    for i, (u, k) in enumerate(zip(cfg["upsample_rates"], cfg["upsample_kernel_sizes"])):
        x = F.conv_transpose1d(x[None], W[f"ups.{i}.0.weight"], W[f"ups.{i}.0.bias"],
                               stride=u, padding=(k - u) // 2)[0]
        mids[f"mid.ups.{i}"] = x
        xs = 0
        for j, dils in enumerate(cfg["resblock_dilation_sizes"]):
            r, h = i * nk + j, x
            for d, dil in enumerate(dils):
                p = f"resblocks.{r}."
                t = B.aa_act(W, p + f"activations.{2 * d}.", h, ls)
                t = B.conv(W, p + f"convs1.{d}", t, dil)
                t = B.aa_act(W, p + f"activations.{2 * d + 1}.", t, ls)
                h = h + B.conv(W, p + f"convs2.{d}", t)
            xs = xs + h
        x = xs / nk
        mids[f"mid.stage.{i}"] = x
    x = B.aa_act(W, "activation_post.", x, ls)
    mids["mid.activation_post"] = x
    x = B.conv(W, "conv_post", x)
    mids["mid.conv_post"] = x
    return torch.tanh(x)


# ------------------------------------------------------------------ verify

def strip(d, prefix):
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


def report(name, got, T, ok, tol=None, ref=None):
    ref = T[name] if ref is None else ref
    d = (got.reshape(ref.shape).float() - ref).abs().max().item()
    tol = TOL.get(name) if tol is None else tol
    good = tol is None or d <= tol
    print(f"  {name:34s} max abs err {d:.3g}  (max |ref| {ref.abs().max().item():.3g}"
          f"{'' if tol is None else f', tol {tol:g}'}) {'ok' if good else 'FAIL'}")
    return ok and good


def worst_mid(mids, T, prefix="mid."):
    names = [n for n in T if n.startswith(prefix)]
    missing = [n for n in names if n not in mids]
    w, wn = 0.0, None
    for n in names:
        if n in mids:
            d = (mids[n].reshape(T[n].shape) - T[n]).abs().max().item()
            if d >= w:
                w, wn = d, n
    print(f"  (worst of {len(names) - len(missing)} mid.* tensors: {w:.3g} at {wn}"
          f"{'; not computed: ' + ', '.join(missing) if missing else ''})")


def verify(gdir):
    ok = True
    with torch.no_grad():
        # mel16k
        path = os.path.join(gdir, "mel16k.safetensors")
        T, meta = read_safetensors(path)
        c = json.loads(meta["config"])
        print(f"# {path}")
        mb, win = mel_buffers(c)
        ok = report("weights.mel_basis", mb, T, ok, tol=1e-7)
        ok = report("weights.hann_window", win, T, ok, tol=0.0)
        mids = {}
        out = mel_forward(c, T["weights.mel_basis"], T["weights.hann_window"], T["in.wave"], mids)
        ok = report("mid.mel_linear", mids["mid.mel_linear"], T, ok)
        ok = report("out.mel", out, T, ok)
        worst_mid(mids, T)

        # mmaudio_vae16k
        path = os.path.join(gdir, "mmaudio_vae16k.safetensors")
        T, meta = read_safetensors(path)
        c = json.loads(meta["config"])
        cfg = vae_cfg(c)
        W = strip(T, "weights.")
        print(f"# {path}")
        if "ckpt.decoder.conv_in.weight" in T:
            ok = report("weights.decoder.conv_in.weight",
                        mp_remove_weight_norm(T["ckpt.decoder.conv_in.weight"]), T, ok, tol=1e-7)
        outs, mids = vae_run(W, cfg, T["in.mel"][0], T["in.z"][0])
        plain = B.vae_decode(W, cfg, T["in.z"][0])
        if not torch.equal(plain, outs["out.dec"]):
            print("  FAIL: bench_audio_torch.vae_decode differs from the recorded decode")
            ok = False
        for n in T:
            if n.startswith("out."):
                ok = report(n, outs[n], T, ok)
        worst_mid(mids, T)

        # bigvgan16k
        path = os.path.join(gdir, "bigvgan16k.safetensors")
        T, meta = read_safetensors(path)
        cfg = json.loads(meta["config"])
        W = strip(T, "weights.")
        print(f"# {path}")
        filt = kaiser_sinc_filter1d(0.25, 0.3, 12)
        fd = max((W[k] - filt).abs().max().item() for k in W if k.endswith("filter"))
        wn = 0.0
        for k in T:
            if k.startswith("ckpt.") and k.endswith("original0"):
                base = k[5:-len("parametrizations.weight.original0")]
                w = torch._weight_norm(T[k[:-1] + "1"], T[k], 0)
                wn = max(wn, (w - W[base + "weight"]).abs().max().item())
        print(f"  anti-alias filters vs kaiser_sinc_filter1d: {fd:.3g}; weight_norm(ckpt) vs "
              f"weights: {wn:.3g} {'ok' if fd <= 1e-7 and wn <= 1e-6 else 'FAIL'}")
        ok = ok and fd <= 1e-7 and wn <= 1e-6
        mids = {}
        out = vocoder_mids(W, cfg, T["in.mel"][0], mids)
        if not torch.equal(B.vocoder(W, cfg, T["in.mel"][0]), out.flatten()):
            print("  FAIL: bench_audio_torch.vocoder differs from the recorded vocoder")
            ok = False
        ok = report("out.wave", out, T, ok)
        worst_mid(mids, T)
    print(f"# verify {'ok' if ok else 'FAIL'}")
    return 0 if ok else 1


# ---------------------------------------------------------------- alt files

def f64_meta(run, tensors, outs):
    """Re-run in float64 with the same (float32) weights and inputs upcast."""
    d64 = run({k: v.double() for k, v in tensors.items()})
    per, worst = {}, (0.0, None, 1.0)
    for n, v in outs.items():
        d = (v.double() - d64[n].reshape(v.shape)).abs().max().item()
        m = v.abs().max().item()
        per[n] = {"max_abs": float(f"{d:.4g}"), "max_abs_ref": float(f"{m:.4g}"),
                  "rel_to_max": float(f"{d / m:.4g}")}
        if d >= worst[0]:
            worst = (d, n, m)
    return json.dumps({"max_abs": float(f"{worst[0]:.4g}"), "max_ref": float(f"{worst[2]:.4g}"),
                       "per_output": per, "rel_to_max": float(f"{worst[0] / worst[2]:.4g}"),
                       "worst_output": worst[1]}, sort_keys=True)


def base_meta(gdir, name):
    return read_safetensors(os.path.join(gdir, name))[1]


def alt_mel(gdir, path):
    c = {"center": False, "clamp_wave": [-1.0, 1.0], "fmax": 11000, "fmin": 20, "hop_size": 128,
         "log_clip": 1e-05, "mag_eps": 1e-09, "n_fft": 512, "norm_fn": "log10", "num_mels": 64,
         "reflect_pad": 192, "sampling_rate": 24000, "win_size": 512}
    g = torch.Generator().manual_seed(101)
    wave = synth_wave(6001, 24000, 330.0, 4100.0, 997, (4000, 5300), g)
    mb, win = mel_buffers(c)
    mids = {}
    out = mel_forward(c, mb, win, wave, mids)
    T = {"weights.mel_basis": mb, "weights.hann_window": win, "in.wave": wave}
    T.update(mids)
    T["out.mel"] = out
    ref = base_meta(gdir, "mel16k.safetensors")
    n = out.shape[-1]
    meta = dict(ref)
    meta.update({
        "config": json.dumps(c, sort_keys=True),
        "description": ALT_NOTE + "MMAudio MelConverter (mmaudio/ext/mel_converter.py) with "
        "sampling_rate 24000, n_fft=win 512, hop 128, 64 mels, fmin 20, fmax 11000. in.wave [1,6001] "
        "= 0.5 sin(330Hz) + 0.3 sin(4100Hz+0.3) + click train (period 997, +0.9 then -0.4) + 1e-3 "
        f"N(0,1) noise, samples 4000..5299 exactly 0; out.mel [1,64,{n}] = "
        "log10(clamp(mel_basis @ sqrt(re^2+im^2+1e-9), 1e-5)).",
        "generator": GENERATOR, "torch_patches": "[]",
        "mel_basis_source": "librosa.filters.mel(sr=24000,n_fft=512,n_mels=64,fmin=20,fmax=11000) "
        "(slaney scale+norm) via the numpy port of librosa@b7e7bf486353821311f68d756e487f65d09cf319 "
        "in scripts/make_golden_audio.py"})
    meta["f32_vs_f64"] = f64_meta(lambda t: {"out.mel": mel_forward(
        c, t["mb"], t["win"], t["wave"])}, {"mb": mb, "win": win, "wave": wave}, {"out.mel": out})
    write_safetensors(path, T, meta)
    return T


def alt_vae(gdir, path):
    E, H, D = 40, 12, 128  # the 44k model's data_dim/embed_dim, small hidden_dim
    c = {"attn_layers": [3], "attn_num_heads": 1, "ch_mult": [1, 2, 4], "clip_act": 256.0,
         "data_dim": D, "down_layers": [0], "embed_dim": E, "encoder_included": True,
         "hidden_dim": H, "kernel_size": 3, "num_res_blocks": 2, "real_16k_hidden_dim": 384}
    cfg = vae_cfg(c)
    g = torch.Generator().manual_seed(202)
    assert D == 128, "only the 80- and 128-mel statistics exist in vae.py"
    W = {"data_mean": torch.tensor(DATA_MEAN_128D).view(1, -1, 1),
         "data_std": torch.tensor(DATA_STD_128D).view(1, -1, 1)}
    raw = {}

    def mp(name, cout, cin, k=3):
        w = torch.randn(cout, cin, k, generator=g)
        w = w + 0.02 * torch.randn(w.shape, generator=g)
        raw[name] = w
        W[name] = mp_remove_weight_norm(w)

    def res(p, cin, cout):
        mp(p + "conv1.weight", cout, cin)
        mp(p + "conv2.weight", cout, cout)
        if cin != cout:
            mp(p + "nin_shortcut.weight", cout, cin, 1)

    def mid(p, ch):
        res(p + "mid.block_1.", ch, ch)
        mp(p + "mid.attn_1.qkv.weight", 3 * ch, ch, 1)
        mp(p + "mid.attn_1.proj_out.weight", ch, ch, 1)
        res(p + "mid.block_2.", ch, ch)

    mult = cfg["ch_mult"]
    W["encoder.learnable_gain"] = 0.02 * torch.randn((), generator=g)
    mp("encoder.conv_in.weight", H, D)
    cin = H
    for i, m in enumerate(mult):
        for j in range(cfg["num_res_blocks"]):
            res(f"encoder.down.{i}.block.{j}.", cin, H * m)
            cin = H * m
        if i in cfg["down_layers"]:
            mp(f"encoder.down.{i}.downsample.conv1.weight", cin, cin, 1)
            mp(f"encoder.down.{i}.downsample.conv2.weight", cin, cin, 1)
    mid("encoder.", cin)
    mp("encoder.conv_out.weight", 2 * E, cin)
    W["decoder.learnable_gain"] = 0.02 * torch.randn((), generator=g)
    cin = H * mult[-1]
    mp("decoder.conv_in.weight", cin, E)
    mid("decoder.", cin)
    for i in reversed(range(len(mult))):
        for j in range(cfg["num_res_blocks"] + 1):
            res(f"decoder.up.{i}.block.{j}.", cin, H * mult[i])
            cin = H * mult[i]
        if i in [k + 1 for k in cfg["down_layers"]]:
            mp(f"decoder.up.{i}.upsample.conv.weight", cin, cin)
    mp("decoder.conv_out.weight", D, cin)

    # in.mel: raw log10 mel of a synthetic 44.1 kHz wave through the 44k MelConverter
    mc = {"sampling_rate": 44100, "n_fft": 2048, "hop_size": 512, "win_size": 2048,
          "num_mels": 128, "fmin": 0, "fmax": 22050}
    Tm = 48
    n = (Tm - 1) * 512 + 512
    wave = synth_wave(n, 44100, 220.0, 6300.0, 2311, (15000, 19000), g)
    mb, win = mel_buffers(mc)
    mel = mel_forward(mc, mb, win, wave)
    assert mel.shape == (1, D, Tm), mel.shape
    z = torch.randn(1, E, Tm // 2, generator=g)
    outs, mids = vae_run(W, cfg, mel[0], z[0])
    T = {f"weights.{k}": v for k, v in W.items()}
    T["ckpt.decoder.conv_in.weight"] = raw["decoder.conv_in.weight"]
    T["in.mel"], T["in.z"] = mel, z
    T.update({k: v[None] for k, v in sorted(mids.items())})
    T.update({k: v[None] for k, v in outs.items()})
    ref = base_meta(gdir, "mmaudio_vae16k.safetensors")
    meta = dict(ref)
    L = Tm // 2
    meta.update({
        "config": json.dumps(c, sort_keys=True),
        "description": ALT_NOTE + f"MMAudio VAE (mmaudio/ext/autoencoder/vae.py VAE(data_dim={D}, "
        f"embed_dim={E}, hidden_dim={H})), i.e. the 44k model's mel/latent sizes with a small "
        "hidden_dim, weights saved AFTER VAE.remove_weight_norm(). in.mel "
        f"[1,{D},{Tm}] = raw log10 mel from the 44k MelConverter (44100 Hz, n_fft 2048, hop 512, "
        "128 mels) of a synthetic wave (NOT normalised). "
        f"out.enc_moments [1,{2 * E},{L}]; out.mean = first {E} ch, out.logvar = last {E} ch "
        f"clamped to [-30,20]. in.z [1,{E},{L}] ~ N(0,1); out.dec = VAE.decode(z) [1,{D},{Tm}]; "
        "mid.dec.raw = decoder output before unnormalize.",
        "generator": GENERATOR, "torch_patches": "[]",
        "weight_norm_removed": "true (VAE.remove_weight_norm(); ckpt.decoder.conv_in.weight is the "
        "raw pre-removal tensor)",
        "normalization_stats": f"weights.data_mean / weights.data_std [1,{D},1] are persistent "
        f"buffers, values = DATA_MEAN_{D}D / DATA_STD_{D}D hard-coded in vae.py (no noise added)"})

    def run64(t):
        o, _ = vae_run(strip(t, "w."), cfg, t["mel"], t["z"])
        return o
    tens = {f"w.{k}": v for k, v in W.items()}
    tens.update({"mel": mel[0], "z": z[0]})
    meta["f32_vs_f64"] = f64_meta(run64, tens, outs)
    write_safetensors(path, T, meta)
    return T


def alt_bigvgan(gdir, path):
    ch, rates, ks = 32, [4, 4, 2, 2, 2], [8, 8, 4, 6, 4]
    rk, rd = [5, 9], [[1, 2, 4], [1, 3, 5]]
    nm = 64
    cfg = {"activation": "snakebeta",
           "activation1d": {"down_kernel_size": 12, "down_ratio": 2,
                            "lowpass": "kaiser-sinc cutoff 0.25 half_width 0.3, replicate padding",
                            "up_kernel_size": 12, "up_ratio": 2},
           "hop": int(np.prod(rates)), "num_mels": nm, "real_upsample_initial_channel": 1536,
           "resblock": "1", "resblock_dilation_sizes": rd, "resblock_kernel_sizes": rk,
           "snake_logscale": False, "upsample_initial_channel": ch,
           "upsample_kernel_sizes": ks, "upsample_rates": rates}
    g = torch.Generator().manual_seed(303)
    W, ck = {}, {}
    filt = kaiser_sinc_filter1d(0.25, 0.3, 12)

    def wn(name, shape, gain, transposed=False):
        v = torch.randn(shape, generator=g)
        fan = v[0].numel() if not transposed else shape[0] * shape[2]
        n = torch.linalg.vector_norm(v.reshape(shape[0], -1), dim=1).view(-1, 1, 1)
        gg = n * (gain / math.sqrt(fan)) * (1 + 0.1 * torch.randn(n.shape, generator=g))
        ck[name + ".parametrizations.weight.original0"] = gg
        ck[name + ".parametrizations.weight.original1"] = v
        W[name + ".weight"] = torch._weight_norm(v, gg, 0)
        W[name + ".bias"] = 0.02 * torch.randn(shape[1] if transposed else shape[0], generator=g)

    def act(p, c):
        W[p + "act.alpha"] = 1 + 0.1 * torch.randn(c, generator=g)  # linear scale (logscale off)
        W[p + "act.beta"] = 1 + 0.1 * torch.randn(c, generator=g)
        W[p + "upsample.filter"] = filt.clone()
        W[p + "downsample.lowpass.filter"] = filt.clone()

    wn("conv_pre", (ch, nm, 7), 1.0)
    for i, (u, k) in enumerate(zip(rates, ks)):
        wn(f"ups.{i}.0", (ch >> i, ch >> (i + 1), k), 1.0 * math.sqrt(u), transposed=True)
    for i in range(len(rates)):
        c = ch >> (i + 1)
        for j, (k, d) in enumerate(zip(rk, rd)):
            p = f"resblocks.{i * len(rk) + j}."
            for m in range(len(d)):
                wn(p + f"convs1.{m}", (c, c, k), 0.7)
            for m in range(len(d)):
                wn(p + f"convs2.{m}", (c, c, k), 0.5)
            for m in range(2 * len(d)):
                act(p + f"activations.{m}.", c)
    act("activation_post.", ch >> len(rates))
    wn("conv_post", (1, ch >> len(rates), 7), 0.08)

    mc = {"sampling_rate": 24000, "n_fft": 512, "hop_size": 128, "win_size": 512,
          "num_mels": nm, "fmin": 20, "fmax": 11000}
    Tm = 18
    wave = synth_wave(Tm * 128, 24000, 523.0, 2900.0, 701, (1500, 1700), g)
    mb, win = mel_buffers(mc)
    mel = mel_forward(mc, mb, win, wave)
    assert mel.shape == (1, nm, Tm), mel.shape
    mids = {}
    out = vocoder_mids(W, cfg, mel[0], mids)
    T = {f"weights.{k}": v for k, v in W.items()}
    T.update({f"ckpt.{k}": v for k, v in ck.items()})
    T["in.mel"] = mel
    T.update({k: v[None] for k, v in sorted(mids.items())})
    T["out.wave"] = out[None]
    ref = base_meta(gdir, "bigvgan16k.safetensors")
    meta = dict(ref)
    meta.update({
        "config": json.dumps(cfg, sort_keys=True),
        "description": ALT_NOTE + "MMAudio BigVGANVocoder (mmaudio/ext/bigvgan/models.py) with "
        f"num_mels {nm}, upsample_initial_channel {ch}, upsample_rates {rates} (hop "
        f"{cfg['hop']}), upsample_kernel_sizes {ks}, resblock_kernel_sizes {rk}, dilations {rd}, "
        "snakebeta with snake_logscale=false (alpha/beta stored linear). in.mel "
        f"[1,{nm},{Tm}] = log10 mel (24 kHz MelConverter, n_fft 512, hop 128, 64 mels) of a "
        f"synthetic wave; out.wave [1,1,{Tm * cfg['hop']}] (tanh output). weights.* = state_dict "
        "AFTER remove_weight_norm() (alias-free filters are buffers [1,1,12]). ckpt.* = the "
        "weight-normed parametrization (original0 = g [dim0,1,1], original1 = v), w = g * v / ||v|| "
        "over all dims except dim 0 (dim 0 = in_channels for ConvTranspose1d). mid.ups.i = after "
        f"transposed conv i; mid.stage.i = mean of the {len(rk)} AMP blocks of stage i.",
        "generator": GENERATOR, "torch_patches": "[]",
        "weight_norm_removed": "true (BigVGANVocoder.remove_weight_norm() applied before saving "
        "weights.*; ckpt.* holds the pre-removal g/v parametrization)"})
    tens = {f"w.{k}": v for k, v in W.items()}
    tens["mel"] = mel[0]
    meta["f32_vs_f64"] = f64_meta(lambda t: {"out.wave": vocoder_mids(
        strip(t, "w."), cfg, t["mel"], {})}, tens, {"out.wave": out})
    write_safetensors(path, T, meta)
    return T


DATA_MEAN_128D = [
    -3.3462, -2.6723, -2.4893, -2.3143, -2.2664, -2.3317, -2.1802, -2.4006, -2.2357, -2.4597,
    -2.3717, -2.4690, -2.5142, -2.4919, -2.6610, -2.5047, -2.7483, -2.5926, -2.7462, -2.7033,
    -2.7386, -2.8112, -2.7502, -2.9594, -2.7473, -3.0035, -2.8891, -2.9922, -2.9856, -3.0157,
    -3.1191, -2.9893, -3.1718, -3.0745, -3.1879, -3.2310, -3.1424, -3.2296, -3.2791, -3.2782,
    -3.2756, -3.3134, -3.3509, -3.3750, -3.3951, -3.3698, -3.4505, -3.4509, -3.5089, -3.4647,
    -3.5536, -3.5788, -3.5867, -3.6036, -3.6400, -3.6747, -3.7072, -3.7279, -3.7283, -3.7795,
    -3.8259, -3.8447, -3.8663, -3.9182, -3.9605, -3.9861, -4.0105, -4.0373, -4.0762, -4.1121,
    -4.1488, -4.1874, -4.2461, -4.3170, -4.3639, -4.4452, -4.5282, -4.6297, -4.7019, -4.7960,
    -4.8700, -4.9507, -5.0303, -5.0866, -5.1634, -5.2342, -5.3242, -5.4053, -5.4927, -5.5712,
    -5.6464, -5.7052, -5.7619, -5.8410, -5.9188, -6.0103, -6.0955, -6.1673, -6.2362, -6.3120,
    -6.3926, -6.4797, -6.5565, -6.6511, -6.8130, -6.9961, -7.1275, -7.2457, -7.3576, -7.4663,
    -7.6136, -7.7469, -7.8815, -8.0132, -8.1515, -8.3071, -8.4722, -8.7418, -9.3975, -9.6628,
    -9.7671, -9.8863, -9.9992, -10.0860, -10.1709, -10.5418, -11.2795, -11.3861]

DATA_STD_128D = [
    2.3804, 2.4368, 2.3772, 2.3145, 2.2803, 2.2510, 2.2316, 2.2083, 2.1996, 2.1835, 2.1769, 2.1659,
    2.1631, 2.1618, 2.1540, 2.1606, 2.1571, 2.1567, 2.1612, 2.1579, 2.1679, 2.1683, 2.1634, 2.1557,
    2.1668, 2.1518, 2.1415, 2.1449, 2.1406, 2.1350, 2.1313, 2.1415, 2.1281, 2.1352, 2.1219, 2.1182,
    2.1327, 2.1195, 2.1137, 2.1080, 2.1179, 2.1036, 2.1087, 2.1036, 2.1015, 2.1068, 2.0975, 2.0991,
    2.0902, 2.1015, 2.0857, 2.0920, 2.0893, 2.0897, 2.0910, 2.0881, 2.0925, 2.0873, 2.0960, 2.0900,
    2.0957, 2.0958, 2.0978, 2.0936, 2.0886, 2.0905, 2.0845, 2.0855, 2.0796, 2.0840, 2.0813, 2.0817,
    2.0838, 2.0840, 2.0917, 2.1061, 2.1431, 2.1976, 2.2482, 2.3055, 2.3700, 2.4088, 2.4372, 2.4609,
    2.4731, 2.4847, 2.5072, 2.5451, 2.5772, 2.6147, 2.6529, 2.6596, 2.6645, 2.6726, 2.6803, 2.6812,
    2.6899, 2.6916, 2.6931, 2.6998, 2.7062, 2.7262, 2.7222, 2.7158, 2.7041, 2.7485, 2.7491, 2.7451,
    2.7485, 2.7233, 2.7297, 2.7233, 2.7145, 2.6958, 2.6788, 2.6439, 2.6007, 2.4786, 2.2469, 2.1877,
    2.1392, 2.0717, 2.0107, 1.9676, 1.9140, 1.7102, 0.9101, 0.7164]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--verify", metavar="GOLDEN_DIR")
    ap.add_argument("--out", metavar="DIR")
    ap.add_argument("--golden", metavar="GOLDEN_DIR", default=os.environ.get(
        "REEL_GOLDEN_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                        "../../shared/golden")),
        help="shipped files whose metadata the alt files follow (for --out)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    if not a.verify and not a.out:
        ap.error("--verify or --out is required")
    rc = 0
    if a.verify:
        rc = verify(a.verify)
    if a.out:
        if a.verify:
            a.golden = a.verify
        os.makedirs(a.out, exist_ok=True)
        with torch.no_grad():
            for name, f in (("alt_mel", alt_mel), ("alt_mmaudio_vae", alt_vae),
                            ("alt_bigvgan", alt_bigvgan)):
                p = os.path.join(a.out, name + ".safetensors")
                f(a.golden, p)
                print(f"# wrote {p} ({os.path.getsize(p)} bytes)")
    return rc


if __name__ == "__main__":
    sys.exit(main())
