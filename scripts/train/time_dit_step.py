#!/usr/bin/python3
"""time_dit_step.py - seconds per sample of one stage-4 training step (forward
+ backward of the fusion DiT and the text encoder, bf16 autocast, as
train_dit.train_step runs it) on seeded random inputs of the default model's
shapes, so a change to the training path can be timed without prepared data.

    time_dit_step.py [--samples 8] [--threads 2] [--amp bf16|off] [--no-keep-memory]
                     [--fused-batch B] [--patch 1,4,4] [--dim 256 --heads 4] [--profile]

--no-keep-memory leaves glibc's allocator as it is (common.keep_freed_memory
not called): run both ways, side by side, to see what that setting is worth.
--fused-batch B times train_dit --fused-batch: B samples in one forward.
--patch / --dim / --heads replace the config's video patch size and both
towers' width (ffn 4x) and heads, to time another layout without a config
file. --profile prints torch.profiler's table of the timed steps first.
Prints one line: `dit-step: s_per_sample=X cpu_s_per_sample=X amp=A keep_memory=B batch=B`.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import REPO  # noqa: E402
import train_dit as td  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "reel-default.yaml"))
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--amp", choices=("bf16", "off"), default="bf16")
    ap.add_argument("--no-keep-memory", action="store_true")
    ap.add_argument("--fused-batch", type=int, default=0, metavar="B")
    ap.add_argument("--patch", help="video patch size T,H,W")
    ap.add_argument("--dim", type=int)
    ap.add_argument("--heads", type=int)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args(argv)
    if a.samples < 1:
        ap.error("--samples must be at least 1")
    if a.fused_batch < 0:
        ap.error("--fused-batch must not be negative (0: one sample a forward)")
    common.setup_torch(a.threads, 0, blas_threads=1, keep_memory=not a.no_keep_memory)
    mc = common.load_model_config(a.config)
    for tower in (mc["dit"], mc["audio"]["dit"]):
        if a.dim:
            tower["dim"], tower["ffn_dim"] = a.dim, 4 * a.dim
        if a.heads:
            tower["num_heads"] = a.heads
    if a.patch:
        mc["dit"]["patch_size"] = [int(v) for v in a.patch.split(",")]
    tc, tcfg = td.tower_cfgs(mc), td.umt5_cfg(mc)
    P = td.init_params(mc, 0)
    d, ad = mc["dit"], mc["audio"]["dit"]
    t_stride = 2 ** sum(common.vae_cfg(mc)["temperal_downsample"])
    F_lat = (mc["defaults"]["frames"] - 1) // t_stride + 1
    H, W = (s // 8 for s in mc["defaults"]["size"][::-1])
    # audio latents of the clip: samples / the vocoder's hop / the mel VAE's downsampling
    # (95 for the default 49 frames at 16 fps)
    au = mc["audio"]
    hop = 1
    for r in au["vocoder"]["upsample_rates"]:
        hop *= r
    n_samples = mc["defaults"]["frames"] * au["sample_rate"] // mc["defaults"]["fps"]
    n_audio = n_samples // hop // 2 ** len(au["vae"]["down_layers"])
    gen = torch.Generator().manual_seed(0)
    ids = list(range(5, 25)) + [1]

    B = max(1, a.fused_batch)

    def one():
        vin = torch.randn((B, d["in_dim"], F_lat, H, W), generator=gen)
        aud = torch.randn((B, n_audio, ad["in_dim"]), generator=gen)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.amp == "bf16"):
            ctxs = [td.text_encode(P, tcfg, ids) for _ in range(B)]
            if a.fused_batch:
                pv, pa = td.fusion_batch(P, tc, vin, aud, torch.full((B,), 500.0), ctxs)
            else:
                pv, pa = td.fusion(P, tc, vin[0], aud[0], torch.tensor(500.0), ctxs[0])
        (pv.float().pow(2).mean() + pa.float().pow(2).mean()).backward()

    one()   # warm-up: first-call allocations and oneDNN kernel selection
    steps = max(1, a.samples // B)
    prof = torch.profiler.profile() if a.profile else None
    if prof:
        prof.__enter__()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        one()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if prof:
        prof.__exit__(None, None, None)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    print("dit-step: s_per_sample=%.3f cpu_s_per_sample=%.3f amp=%s keep_memory=%s batch=%d" % (
        wall / (steps * B), cpu / (steps * B), a.amp, "no" if a.no_keep_memory else "yes",
        a.fused_batch or 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
