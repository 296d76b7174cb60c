#!/usr/bin/python3
"""PyTorch reference for the umT5 bench: an independent, compact T5 encoder
(Wan's T5Encoder math: RMS norms, attention without 1/sqrt(d) and with a
bidirectional relative-position bias per layer or shared, gated-GELU FFN),
written from the model's published structure, run on the files
tests/bench_umt5.c writes.

    bench_umt5_torch.py --weights W --ids I [--ours O] [--runs N] [--threads N]
    bench_umt5_torch.py --golden FILE        # self-check against a golden file
    bench_umt5_torch.py --write-alt OUT      # an alternate-config golden file

bf16 matrices are upcast to float32 once at load (not timed); the embedding
table stays bf16 and only the looked-up rows are widened, which gives the
same numbers without a 4 GB f32 copy. --write-alt writes a file in the
golden format (shared_pos=True, dim_attn != dim, 3 heads, 16 buckets, a
padded mask) that `reel check` can run; it is computed by this script, so it
checks reel against this implementation, which --golden checks against the
official vectors. Prints '#' lines and, last, "seconds=X"."""
import argparse
import json
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_safetensors(path, keep_bf16=()):
    """Returns ({name: tensor}, metadata). Float tensors become float32,
    except names in keep_bf16, which stay bfloat16 views of the file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="c", offset=8 + n)
    meta = header.pop("__metadata__", {})
    out = {}
    for name, h in header.items():
        b, e = h["data_offsets"]
        buf = raw[b:e]
        dt = h["dtype"]
        if dt == "BF16" and name in keep_bf16:
            t = torch.from_numpy(buf.view(np.int16)).view(torch.bfloat16)
        elif dt == "BF16":
            t = torch.from_numpy((buf.view(np.uint16).astype(np.uint32) << 16).view(np.float32))
        elif dt == "F32":
            t = torch.from_numpy(buf.view(np.float32).copy())
        elif dt == "F16":
            t = torch.from_numpy(buf.view(np.float16).astype(np.float32))
        elif dt == "I64":
            t = torch.from_numpy(buf.view(np.int64).copy())
        else:
            raise SystemExit(f"{path}: {name}: unsupported dtype {dt}")
        out[name] = t.reshape(h["shape"])
    return out, meta


def write_safetensors(path, tensors, meta):
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        a = t.detach().contiguous().numpy()
        dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64"}[a.dtype]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = meta
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def buckets(L, num_buckets, max_dist=128):
    """T5's bidirectional relative-position buckets for key - query, [L, L]:
    half the buckets per direction, exact below max_exact, log-spaced up to
    max_dist (float32 log math, truncated)."""
    rel = torch.arange(L)[None, :] - torch.arange(L)[:, None]
    half = num_buckets // 2
    exact = half // 2
    out = (rel > 0).long() * half
    a = rel.abs()
    big = exact + (torch.log(a.float() / exact) / math.log(max_dist / exact)
                   * (half - exact)).long()
    big = torch.clamp(big, max=half - 1)
    return out + torch.where(a < exact, a, big)


def rms(x, g, eps=1e-6):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * g


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def encode(W, cfg, ids, mask=None, mids=None):
    """ids [L] -> hidden [L, dim] for every position."""
    L = ids.shape[0]
    heads = cfg["num_heads"]
    hd = cfg["dim_attn"] // heads
    x = W["token_embedding.weight"][ids].float()
    bk = buckets(L, cfg["num_buckets"])
    shared = cfg.get("shared_pos", True)
    for i in range(cfg["num_layers"]):
        p = f"blocks.{i}."
        table = W["pos_embedding.embedding.weight" if shared else p + "pos_embedding.embedding.weight"]
        bias = table[bk].permute(2, 0, 1)  # [heads, Lq, Lk]
        if mids is not None:
            mids[f"mid.block{i}_pos_bias"] = bias[None].clone()
        if mask is not None:
            bias = bias.masked_fill(mask[None, None, :] == 0, torch.finfo(torch.float32).min)
        h = rms(x, W[p + "norm1.weight"])
        q = (h @ W[p + "attn.q.weight"].t()).view(L, heads, hd).transpose(0, 1)
        k = (h @ W[p + "attn.k.weight"].t()).view(L, heads, hd).transpose(0, 1)
        v = (h @ W[p + "attn.v.weight"].t()).view(L, heads, hd).transpose(0, 1)
        a = torch.softmax(q @ k.transpose(1, 2) + bias, dim=-1) @ v
        x = x + a.transpose(0, 1).reshape(L, -1) @ W[p + "attn.o.weight"].t()
        h = rms(x, W[p + "norm2.weight"])
        f = (h @ W[p + "ffn.fc1.weight"].t()) * gelu_tanh(h @ W[p + "ffn.gate.0.weight"].t())
        x = x + f @ W[p + "ffn.fc2.weight"].t()
        if mids is not None:
            mids[f"mid.block{i}_out"] = x[None].clone()
    return rms(x, W["norm.weight"])


def golden_check(path):
    T, meta = read_safetensors(path)
    cfg = json.loads(meta["config"])
    W = {k[len("weights."):]: v for k, v in T.items() if k.startswith("weights.")}
    ids, mask = T["in.ids"][0], T["in.mask"][0]
    mids = {}
    with torch.no_grad():
        out = encode(W, cfg, ids, mask, mids)
    worst = 0.0
    for name, got in list(mids.items()) + [("out.hidden", out[None])]:
        d = (got - T[name]).abs().max().item()
        worst = max(worst, d)
        print(f"# {name}: max abs diff {d:.3g}")
    ok = worst <= 2e-5
    print(f"# golden {'ok' if ok else 'FAIL'}: worst {worst:.3g} (tol 2e-5)")
    return 0 if ok else 1


def write_alt(path):
    """A golden-format case for a configuration the shipped file lacks."""
    cfg = {"vocab": 300, "dim": 48, "dim_attn": 96, "dim_ffn": 80, "num_heads": 3,
           "num_layers": 3, "num_buckets": 16, "shared_pos": True, "dropout": 0.0}
    g = torch.Generator().manual_seed(7)
    W = {"token_embedding.weight": torch.randn(300, 48, generator=g),
         "pos_embedding.embedding.weight": 0.3 * torch.randn(16, 3, generator=g)}
    for i in range(cfg["num_layers"]):
        p = f"blocks.{i}."
        W[p + "norm1.weight"] = 1 + 0.1 * torch.randn(48, generator=g)
        # q and k small: without 1/sqrt(d) the scores of N(0,1/fan_in)
        # weights are sharp enough to make float32 itself drift by 3e-5
        for n, s in (("q", 0.4), ("k", 0.4), ("v", 1.0)):
            W[p + f"attn.{n}.weight"] = s * torch.randn(96, 48, generator=g) / math.sqrt(48)
        W[p + "attn.o.weight"] = torch.randn(48, 96, generator=g) / math.sqrt(96)
        W[p + "norm2.weight"] = 1 + 0.1 * torch.randn(48, generator=g)
        W[p + "ffn.gate.0.weight"] = torch.randn(80, 48, generator=g) / math.sqrt(48)
        W[p + "ffn.fc1.weight"] = torch.randn(80, 48, generator=g) / math.sqrt(48)
        W[p + "ffn.fc2.weight"] = torch.randn(48, 80, generator=g) / math.sqrt(80)
    W["norm.weight"] = 1 + 0.1 * torch.randn(48, generator=g)
    L, real = 150, 140  # relative positions past max_dist=128
    ids = torch.randint(1, 300, (L,), generator=g)
    ids[real:] = 0
    mask = (torch.arange(L) < real).long()
    mids = {}
    with torch.no_grad():
        out = encode(W, cfg, ids, mask, mids)
    T = {f"weights.{k}": v for k, v in W.items()}
    T["in.ids"], T["in.mask"] = ids[None], mask[None]
    T.update(mids)
    T["out.hidden"] = out[None]
    meta = {"config": json.dumps(cfg),
            "reference": "Wan-Video/Wan2.1@9737cba9c1c3c4d04b33fcad41c111989865d315 "
                         "wan/modules/t5.py T5Encoder.forward",
            "description": "alternate config from scripts/bench_umt5_torch.py --write-alt "
                           "(not the official code; that script is checked with --golden)",
            "generator": f"scripts/bench_umt5_torch.py, torch {torch.__version__} CPU float32"}
    write_safetensors(path, T, meta)
    print(f"# wrote {path}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights")
    ap.add_argument("--ids")
    ap.add_argument("--ours")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--golden")
    ap.add_argument("--write-alt")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.golden:
        return golden_check(a.golden)
    if a.write_alt:
        return write_alt(a.write_alt)
    if not a.weights or not a.ids:
        ap.error("--weights and --ids are required")

    W, meta = read_safetensors(a.weights, keep_bf16=("token_embedding.weight",))
    cfg = json.loads(meta["config"])
    ids = read_safetensors(a.ids)[0]["ids"]
    best = float("inf")
    with torch.no_grad():
        for r in range(a.runs):
            t0 = time.perf_counter()
            out = encode(W, cfg, ids)
            dt = time.perf_counter() - t0
            print(f"# ref run {r + 1}: {dt:.3f} s")
            sys.stdout.flush()
            best = min(best, dt)
    if a.ours:
        ours = read_safetensors(a.ours)[0]["hidden"]
        d = (ours - out).abs().max().item()
        print(f"# max abs diff ours vs ref: {d:.3g} (max |ref| {out.abs().max().item():.4g})")
    print(f"# ref: torch {torch.__version__}, {a.threads} threads, {cfg['num_layers']} layers, "
          f"{ids.shape[0]} tokens, best of {a.runs}")
    print(f"seconds={best:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
