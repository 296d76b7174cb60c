#!/usr/bin/python3
"""PyTorch reference for `make bench`: an independent, compact WanModel
(Wan2.1 t2v) forward, written from the model's published structure, run on
the same safetensors files as tests/bench_dit.c.

    bench_dit_torch.py --weights W --inputs I [--ours O] [--runs N] [--threads N]
    bench_dit_torch.py --golden FILE      # self-check against a golden file

bf16 weights are upcast to float32 once at load (not timed), so both sides
do f32 math on the same bf16-stored values. The safetensors reader is our
own few lines of numpy: no safetensors package is needed. Prints '#' lines
and, last, "seconds=X" (best forward time over --runs).
"""
import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path):
    """Returns ({name: float32 or int64 torch tensor}, metadata dict)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        buf = raw[b:e]
        dt = h["dtype"]
        if dt == "F32":
            a = buf.view(np.float32).copy()
        elif dt == "BF16":
            # bf16 is the top half of an f32: widen by a 16-bit shift.
            a = (buf.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F16":
            a = buf.view(np.float16).astype(np.float32)
        elif dt == "I64":
            a = buf.view(np.int64).copy()
        else:
            raise SystemExit(f"{path}: {name}: unsupported dtype {dt}")
        out[name] = torch.from_numpy(a.reshape(h["shape"]))
    return out, meta


def sinusoid(dim, t):
    # As the reference: float64 angles, [cos, sin] halves, cast to float32.
    half = dim // 2
    w = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)
    a = torch.outer(t.to(torch.float64), w)
    return torch.cat([torch.cos(a), torch.sin(a)], dim=1).float()


def rope_table(grid, head_dim):
    """Complex [L, head_dim/2] rotation per token: the pair index space is
    split into (frame, row, column) parts of c-2(c//3), c//3, c//3 pairs,
    each with its own 1/10000^(2j/d_axis) frequencies."""
    c = head_dim // 2
    parts = [c - 2 * (c // 3), c // 3, c // 3]
    dims = [head_dim - 4 * (head_dim // 6), 2 * (head_dim // 6), 2 * (head_dim // 6)]
    angles = []
    for axis, (n, pairs, d) in enumerate(zip(grid, parts, dims)):
        inv = 1.0 / torch.pow(10000.0, torch.arange(0, d, 2, dtype=torch.float64)[:pairs] / d)
        a = torch.outer(torch.arange(n, dtype=torch.float64), inv)  # [n, pairs]
        shape = [1, 1, 1, pairs]
        shape[axis] = n
        angles.append(a.view(shape).expand(grid[0], grid[1], grid[2], pairs))
    ang = torch.cat(angles, dim=-1).reshape(-1, c)
    return torch.polar(torch.ones_like(ang), ang)


def apply_rope(x, heads, table):
    # Adjacent pairs (x[2i], x[2i+1]) are one complex number; rotate in f64.
    L, D = x.shape
    xc = torch.view_as_complex(x.to(torch.float64).reshape(L, heads, -1, 2))
    return torch.view_as_real(xc * table[:, None, :]).reshape(L, D).float()


def attention(q, k, v, heads):
    Lq, D = q.shape
    hd = D // heads
    q = q.view(Lq, heads, hd).transpose(0, 1)
    k = k.view(-1, heads, hd).transpose(0, 1)
    v = v.view(-1, heads, hd).transpose(0, 1)
    sdpa = getattr(F, "scaled_dot_product_attention", None)
    if sdpa is not None:
        o = sdpa(q, k, v)
    else:
        o = torch.softmax(torch.matmul(q, k.transpose(1, 2)) * (1.0 / math.sqrt(hd)), dim=-1)
        o = torch.matmul(o, v)
    return o.transpose(0, 1).reshape(Lq, D)


def rms(x, g, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def wan_forward(W, cfg, x, t, context):
    """x [C, F, H, W]; t [1]; context [Lc, text_dim] -> [out_dim, F, H, W]."""
    D, heads, eps = cfg["dim"], cfg["num_heads"], cfg["eps"]
    pf, ph, pw = cfg["patch_size"]
    C, Fr, Hh, Ww = x.shape
    f, h, w = Fr // pf, Hh // ph, Ww // pw
    lin = lambda v, name: F.linear(v, W[name + ".weight"], W[name + ".bias"])
    ln = lambda v: F.layer_norm(v, (D,), eps=eps)

    # Patch embedding: a stride=kernel Conv3d is a Linear over patches.
    xp = x.reshape(C, f, pf, h, ph, w, pw).permute(1, 3, 5, 0, 2, 4, 6).reshape(f * h * w, -1)
    tok = F.linear(xp, W["patch_embedding.weight"].reshape(D, -1), W["patch_embedding.bias"])

    e = lin(F.silu(lin(sinusoid(cfg["freq_dim"], t), "time_embedding.0")), "time_embedding.2")
    e0 = lin(F.silu(e), "time_projection.1").view(6, D)

    ctx = torch.zeros(cfg["text_len"], context.shape[1])
    ctx[: context.shape[0]] = context  # zero-padded, not masked, as in WanModel
    ctx = lin(F.gelu(lin(ctx, "text_embedding.0"), approximate="tanh"), "text_embedding.2")

    table = rope_table((f, h, w), D // heads)
    for i in range(cfg["num_layers"]):
        p = f"blocks.{i}."
        m = W[p + "modulation"].view(6, D) + e0
        y = ln(tok) * (1 + m[1]) + m[0]
        q = apply_rope(rms(lin(y, p + "self_attn.q"), W[p + "self_attn.norm_q.weight"], eps),
                       heads, table)
        k = apply_rope(rms(lin(y, p + "self_attn.k"), W[p + "self_attn.norm_k.weight"], eps),
                       heads, table)
        v = lin(y, p + "self_attn.v")
        tok = tok + lin(attention(q, k, v, heads), p + "self_attn.o") * m[2]

        y = F.layer_norm(tok, (D,), W[p + "norm3.weight"], W[p + "norm3.bias"], eps)
        q = rms(lin(y, p + "cross_attn.q"), W[p + "cross_attn.norm_q.weight"], eps)
        k = rms(lin(ctx, p + "cross_attn.k"), W[p + "cross_attn.norm_k.weight"], eps)
        v = lin(ctx, p + "cross_attn.v")
        tok = tok + lin(attention(q, k, v, heads), p + "cross_attn.o")

        y = ln(tok) * (1 + m[4]) + m[3]
        y = lin(F.gelu(lin(y, p + "ffn.0"), approximate="tanh"), p + "ffn.2")
        tok = tok + y * m[5]

    hm = W["head.modulation"].view(2, D) + e
    out = lin(ln(tok) * (1 + hm[1]) + hm[0], "head.head")
    out = out.view(f, h, w, pf, ph, pw, -1).permute(6, 0, 3, 1, 4, 2, 5)
    return out.reshape(-1, Fr, Hh, Ww)


def strip(d, prefix):
    return {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}


def golden(path):
    T, meta = read_safetensors(path)
    cfg = json.loads(meta["config"])
    with torch.no_grad():
        out = wan_forward(strip(T, "weights."), cfg, T["in.x"], T["in.t"], T["in.context"])
    d = (out - T["out.x"]).abs().max().item()
    print(f"# golden {path}: max abs diff {d:.3g} (max |out| {T['out.x'].abs().max().item():.3g})")
    return 0 if d < 1e-4 else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights")
    ap.add_argument("--inputs")
    ap.add_argument("--ours", help="our output (safetensors, tensor x) to compare with")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--golden")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.golden:
        return golden(a.golden)
    if not a.weights or not a.inputs:
        ap.error("--weights and --inputs are required")

    W, meta = read_safetensors(a.weights)
    cfg = json.loads(meta["config"])
    I, _ = read_safetensors(a.inputs)
    best = math.inf
    with torch.no_grad():
        for r in range(a.runs):
            t0 = time.perf_counter()
            out = wan_forward(W, cfg, I["x"], I["t"], I["context"])
            dt = time.perf_counter() - t0
            print(f"# torch run {r + 1}: {dt:.3f} s", flush=True)
            best = min(best, dt)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{cfg['num_layers']} layers, best of {a.runs}, max |out| {out.abs().max().item():.4g}")
    if a.ours:
        ours, _ = read_safetensors(a.ours)
        d = (ours["x"] - out).abs().max().item()
        print(f"# dit output max abs diff vs torch: {d:.3g}")
        # f32 reordering noise is ~1e-6 of the output scale; far above it
        # means the two forwards compute different things.
        if not d <= 1e-3 * max(1.0, out.abs().max().item()):
            print("# WARNING: the outputs differ far beyond rounding: a bug on one side")
    print(f"seconds={best:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
