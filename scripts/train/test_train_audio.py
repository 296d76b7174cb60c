#!/usr/bin/python3
"""test_train_audio.py - smoke tests of stage 2 (train_audio.py, the audio codec).

Prints one "ok - NAME" or "FAIL - NAME: why" line per test; exit status 1 if
any failed. About 20-30 s on 1 thread.

  golden_audio   the training path (leaf tensors with autograd) reproduces
                 ../shared/golden/mmaudio_vae16k (encode + decode) and
                 bigvgan16k within README-audio.md's tolerances, and every
                 trainable tensor gets a gradient
  weight_norm    the trained VAE dict is remove_weight_norm(raw), and forced
                 weight normalisation leaves the forward unchanged
  resume         SIGTERM in the VAE phase and again in the vocoder phase +
                 --resume == an uninterrupted run (bitwise, 1 thread)
  export         (the files of resume's uninterrupted run) the f16 files load back with the names/shapes of
                 `reel init-weights` for the same audio: section (tiny-ovi
                 with it swapped in; `reel info` does not list audio files),
                 encode_audio gives floor(s * 31.25)
                 latents, and `reel check` on the --check-files output
                 (the trained weights, this code's outputs) passes
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402
from common import REPO  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
import train_audio as ta  # noqa: E402
import make_golden_audio as mga  # noqa: E402

GOLDEN, REEL = common.GOLDEN, common.REEL_BIN
PY = sys.executable
TMP = tempfile.mkdtemp(prefix="reel-train-audio-test-")
FAILS = []
SMALL = ["--threads", "1", "--vae-batch", "2", "--vae-frames", "32", "--voc-batch", "1",
         "--voc-frames", "16", "--eval-n", "1", "--log-every", "1", "--warmup", "2"]


def test(fn):
    common.run_test(fn, FAILS)


def data_dirs():
    return common.tiny_synth_dirs(TMP)


def run(out, *extra):
    tr, ho = data_dirs()
    cmd = [PY, os.path.join(HERE, "train_audio.py"), "--out", out, "--data", tr, "--heldout", ho,
           "--golden", GOLDEN] + SMALL + list(extra)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_golden_audio():
    for f in ("mmaudio_vae16k.safetensors", "bigvgan16k.safetensors"):
        if not os.path.exists(os.path.join(GOLDEN, f)):
            return "no %s in %s" % (f, GOLDEN)
    T, meta = mga.read_safetensors(os.path.join(GOLDEN, "mmaudio_vae16k.safetensors"))
    import json
    cfg = ta.vae_cfg(json.loads(meta["config"]))
    # decoder.learnable_gain: bench_audio_torch reads it as a float; training
    # folds both gains into conv_out instead (test weight_norm)
    W = {k[8:]: v.clone().requires_grad_(not k.startswith("weights.data_") and
                                          k != "weights.decoder.learnable_gain")
         for k, v in T.items() if k.startswith("weights.")}
    mu, logvar = ta.vae_encode_moments(W, cfg, T["in.mel"][0])
    dec = ta.vae_decode(W, cfg, T["in.z"][0])
    errs = [(mu - T["out.mean"][0]).abs().max().item(),
            (logvar - T["out.logvar"][0]).abs().max().item(),
            (dec - T["out.dec"][0]).abs().max().item()]
    if max(errs[:2]) > 5e-5 or errs[2] > 1e-4:
        return "VAE vs golden: mean/logvar/dec max abs %s" % errs
    (mu.pow(2).mean() + logvar.mean() + dec.mean()).backward()
    nog = [k for k, v in W.items() if v.requires_grad and (v.grad is None or not v.grad.abs().sum() > 0)]
    if nog:
        return "VAE tensors without gradient: %s" % nog[:4]
    T, meta = mga.read_safetensors(os.path.join(GOLDEN, "bigvgan16k.safetensors"))
    gcfg = json.loads(meta["config"])
    G = {k[8:]: v.clone().requires_grad_(not k.endswith("filter"))
         for k, v in T.items() if k.startswith("weights.")}
    y = ta.vocode(G, gcfg, T["in.mel"][0])
    e = (y - T["out.wave"].flatten()).abs().max().item()
    if e > 2e-5:
        return "vocoder vs golden: max abs %.3g" % e
    y.pow(2).mean().backward()
    nog = [k for k, v in G.items() if v.requires_grad and (v.grad is None or not v.grad.abs().sum() > 0)]
    if nog:
        return "vocoder tensors without gradient: %s" % nog[:4]
    # the spec tables cover the golden files exactly (their configs)
    gspec = {n: s for n, s, _ in ta.voc_param_specs(ta.voc_cfg(dict(
        gcfg, resblock_dilations=gcfg["resblock_dilation_sizes"][0])))}
    if gspec.keys() != G.keys() or any(list(G[k].shape) != gspec[k] for k in G):
        return "voc_param_specs differs from the golden vocoder's tensors"
    return None


def test_weight_norm():
    cfg = ta.vae_cfg(ta.AUDIO_DEFAULT["vae"])
    g = torch.Generator().manual_seed(3)
    P = ta.init_vae(cfg, g, torch.full((80,), -4.0), torch.ones(80))
    W = ta.vae_weights(P, cfg)
    n = "decoder.conv_in.weight"
    if not torch.equal(W[n], mga.mp_remove_weight_norm(P[n])):
        return "vae_weights is not remove_weight_norm(raw)"
    norms = W[n].reshape(W[n].shape[0], -1).norm(dim=1)
    if not torch.allclose(norms, torch.ones_like(norms), atol=1e-3):
        return "removed weights are not unit-norm per output channel"
    # the decoder's gain is folded into conv_out (the file holds gain 0)
    # the gains are folded into conv_out (the file holds gain 0) and get a
    # gradient from gain 0 on
    for part in ("encoder", "decoder"):
        W = ta.vae_weights(P, cfg)
        W[part + ".conv_out.weight"].sum().backward()
        gr = P[part + ".learnable_gain"].grad
        if gr is None or float(gr) == 0.0:
            return "%s.learnable_gain gets no gradient" % part
        with torch.no_grad():
            P[part + ".learnable_gain"].fill_(0.5)
        W = ta.vae_weights(P, cfg)
        c = part + ".conv_out.weight"
        if (float(W[part + ".learnable_gain"]) != 0.0 or
                not torch.allclose(W[c], 1.5 * mga.mp_remove_weight_norm(P[c]))):
            return "%s gain not folded into %s" % (part, c)
        with torch.no_grad():
            P[part + ".learnable_gain"].fill_(0.0)
    W = ta.vae_weights(P, cfg)
    with torch.no_grad():
        for v in P.values():
            if v.requires_grad and v.dim() == 3:
                v.mul_(3.0)
    ta.force_weight_norm(P, cfg)
    W2 = ta.vae_weights(P, cfg)
    d = max((W2[k] - W[k]).abs().max().item() for k in W)
    if d > 1e-4:
        return "forced weight normalisation changed the forward weights by %.3g" % d
    return None


def ckpt_params(out):
    return common.load_checkpoint(out)["params"]


def test_resume():
    a, b = os.path.join(TMP, "ra"), os.path.join(TMP, "rb")
    steps = ["--vae-steps", "3", "--voc-steps", "3"]
    r = run(a, *steps, "--dtype", "f16", "--check-files")     # test_export reads its files
    if r.returncode:
        return "uninterrupted run failed:\n" + r.stdout[-1500:]
    r = run(b, *steps, "--test-sigterm-at", "2")
    if r.returncode or "stopped at step 2" not in r.stdout:
        return "SIGTERM run: rc %d\n%s" % (r.returncode, r.stdout[-800:])
    r = run(b, *steps, "--resume", "--test-sigterm-at", "4")
    if r.returncode or "resumed at step 2" not in r.stdout or "stopped at step 4" not in r.stdout:
        return "resume 1: rc %d\n%s" % (r.returncode, r.stdout[-800:])
    r = run(b, *steps, "--resume", "--no-export")
    if r.returncode or "resumed at step 4" not in r.stdout:
        return "resume 2: rc %d\n%s" % (r.returncode, r.stdout[-800:])
    pa, pb = ckpt_params(a), ckpt_params(b)
    diff = [k for k in pa if not torch.equal(pa[k], pb[k])]
    if diff:
        return "resumed parameters differ: %s" % diff[:3]
    if torch.equal(pa["vae.decoder.conv_in.weight"], ckpt_params(b)["vae.decoder.conv_in.weight"] * 0):
        return "parameters are zero"
    la = common.JsonLog(os.path.join(a, "log.jsonl"), 10 ** 9).records()
    lb = common.JsonLog(os.path.join(b, "log.jsonl"), 10 ** 9).records()
    if [r["loss"] for r in la] != [r["loss"] for r in lb] or len(la) != 6:
        return "logs differ after resume"
    return None


def test_export():
    out = os.path.join(TMP, "ra")           # written by test_resume's uninterrupted run
    if not os.path.exists(os.path.join(out, "stats.json")):
        return "no exported run (test_resume failed first)"
    vae, vmeta = common.st_load(os.path.join(out, "audio_vae.safetensors"))
    voc, _ = common.st_load(os.path.join(out, "vocoder.safetensors"))
    if vmeta.get("weight_norm_removed") != "true":
        return "weight_norm_removed missing from the VAE metadata"
    for W in (vae, voc):
        bad = [k for k, v in W.items() if v.dtype != torch.float16]
        if bad:
            return "%s not f16" % bad[:2]
    # encode_audio: floor(seconds * 31.25) latents, z = mu
    import json
    sec = ta.AUDIO_DEFAULT["vae"]
    rng = np.random.default_rng(0)
    for n, want in ((49000, 95), (48000, 93), (16000, 31), (700, 1)):
        z = ta.encode_audio(os.path.join(out, "audio_vae.safetensors"), sec,
                            (0.1 * rng.standard_normal(n)).astype(np.float32))
        if z.shape != (want, sec["embed_dim"]) or z.dtype != np.float32 or not np.isfinite(z).all():
            return "encode_audio(%d samples) -> %s, want (%d, %d)" % (n, z.shape, want, sec["embed_dim"])
    stats = json.load(open(os.path.join(out, "stats.json")))
    for k in ("vae_mel_l1", "onset_within_1_frame", "silence_max_abs", "latent_std"):
        if k not in stats["heldout"]:
            return "stats.json lacks heldout.%s" % k
    if not os.access(REEL, os.X_OK):
        return "no %s (build first)" % REEL
    # parity: reel's C code on the trained (rounded) weights vs this code's outputs
    r = subprocess.run([REEL, "check", os.path.join(out, "check_audio_vae.safetensors"),
                        os.path.join(out, "check_vocoder.safetensors")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode or "2 of 2 files passed" not in r.stdout:
        return "reel check: rc %d\n%s" % (r.returncode, r.stdout[-800:])
    # the C tensor tables for the same audio: section (tiny-ovi with it swapped in)
    src = open(os.path.join(REPO, "tests", "configs", "tiny-ovi.yaml")).read()
    src = re.sub(r"(?m)^weights_dir:.*$", "weights_dir: w", src)
    head, rest = src.split("\naudio:\n", 1)
    dit = re.search(r"(?ms)^  dit:\n.*?(?=^  vae:)", rest).group(0)
    tail = rest[re.search(r"(?m)^\S", rest).start():]
    y = ta.yaml_section(ta.AUDIO_DEFAULT).replace("  vae:\n", dit + "  vae:\n", 1)
    src = head + "\n" + y + "\n" + tail
    os.makedirs(os.path.join(TMP, "ref", "w"), exist_ok=True)
    with open(os.path.join(TMP, "ref", "m.yaml"), "w") as f:
        f.write(src)
    r = subprocess.run([REEL, "init-weights", os.path.join(TMP, "ref", "m.yaml"), "--force"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        return "reel init-weights: " + r.stdout[-500:]
    for f, mine in (("audio_vae.safetensors", vae), ("vocoder.safetensors", voc)):
        ref, _ = common.st_load(os.path.join(TMP, "ref", "w", f))
        if sorted(ref) != sorted(mine):
            return "%s: names differ from the C table: missing %s, extra %s" % (
                f, sorted(set(ref) - set(mine))[:3], sorted(set(mine) - set(ref))[:3])
        for k in ref:
            if list(ref[k].shape) != list(mine[k].shape):
                return "%s %s: shape %s vs C %s" % (f, k, list(mine[k].shape), list(ref[k].shape))
    return None


def main():
    try:
        for t in (test_golden_audio, test_weight_norm, test_resume, test_export):
            test(t)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
