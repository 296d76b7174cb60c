#!/usr/bin/env python3
"""make_golden.py - independent PyTorch (float32) model of the Wan pieces that
`reel check` tests, plus a writer of golden files in the shipped format.

What it implements (own code, written from the math of the reference):
  * Wan DiT (WanModel.forward): Wan2.1 t2v, Wan2.2 per-token timesteps (ti2v),
    Wan2.2 i2v layout (x and y concatenated on channels, no CLIP), zero padding
    of the token sequence to seq_len with key masking.
  * Wan2.1 VAE and Wan2.2 VAE (raw WanVAE_): chunked causal encode (frame 0,
    then groups of 4, feature cache), per-latent-frame decode with the cache,
    2.2 patchify/unpatchify, AvgDown3D/DupUp3D shortcuts and first_chunk.
  * FlowUniPCMultistepScheduler (bh2, predict_x0, order 2, lower_order_final)
    and FlowDPMSolverMultistepScheduler (dpmsolver++, order 2, midpoint), the
    Wan CFG sampling loop with int64 timesteps.
  * A small safetensors reader/writer (struct + json + numpy).

How to run (Debian python3-torch; keep it small, it is CPU only):
  # 1. validate against the files dumped from the official reference code
  python3 scripts/make_golden.py --verify /work/shared/golden
  # 2. write the alternate-configuration golden files (deterministic)
  python3 scripts/make_golden.py --out tests/golden
  #    only some of them:  --only alt_dit_t2v,alt_wan22_vae
  #    skip the float64 re-run that fills the f32_vs_f64 metadata: --no-f64

--verify exits non-zero when any out.*/mid.* tensor is outside the README
tolerances (DiT 2e-5, VAE mu 5e-5 / decoded 1e-4, trajectories 5e-5,
timesteps exact, sigmas 1e-7).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)  # bit-for-bit reproducible files

REF21 = "Wan-Video/Wan2.1@9737cba9c1c3c4d04b33fcad41c111989865d315"
REF22 = "Wan-Video/Wan2.2@42bf4cfaa384bc21833865abc2f9e6c0e67233dc"
REF_DIT21 = REF21 + " wan/modules/model.py WanModel.forward"
REF_DIT22 = REF22 + " wan/modules/model.py WanModel.forward"
REF_VAE21 = REF21 + " wan/modules/vae.py WanVAE_.encode / WanVAE_.decode"
REF_VAE22 = REF22 + " wan/modules/vae2_2.py WanVAE_.encode / WanVAE_.decode"
REF_FLOW = (REF21 + " wan/utils/fm_solvers_unipc.py FlowUniPCMultistepScheduler, "
            "wan/utils/fm_solvers.py FlowDPMSolverMultistepScheduler/get_sampling_sigmas/"
            "retrieve_timesteps, loop of wan/text2video.py WanT2V.generate, model "
            "wan/modules/model.py (identical scheduler files in Wan2.2)")
DTYPE_NOTE = "float32 (all tensors F32 unless I64 ids/steps)"
GENERATOR = ("scripts/make_golden.py (independent PyTorch reimplementation, validated "
             "against the shipped golden files with --verify), torch %s CPU float32, 1 thread"
             % torch.__version__)

# ----------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------
_ST_DT = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "I32": np.int32}


def st_read(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n].decode("utf-8"))
    meta = hdr.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, ent in hdr.items():
        b, e = ent["data_offsets"]
        dt = np.dtype(_ST_DT[ent["dtype"]]).newbyteorder("<")
        arr = np.frombuffer(data, dtype=dt, count=(e - b) // dt.itemsize, offset=base + b)
        out[name] = arr.reshape(ent["shape"]).astype(dt.newbyteorder("="))
    return out, meta


def st_write(path, items, meta):
    """items: list of (name, np.ndarray float32/int64), written in this order."""
    hdr, blobs, off = {}, [], 0
    for name, a in items:
        a = np.ascontiguousarray(a)
        if a.dtype == np.float32:
            dt = "F32"
        elif a.dtype == np.int64:
            dt = "I64"
        else:
            raise TypeError("%s: unsupported dtype %s" % (name, a.dtype))
        raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        hdr[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hdr["__metadata__"] = {k: str(v) for k, v in meta.items()}
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def weights_of(tensors, dtype):
    return {k[len("weights."):]: torch.from_numpy(np.array(v)).to(dtype)
            for k, v in tensors.items() if k.startswith("weights.")}


# ----------------------------------------------------------------------------
# Wan DiT
# ----------------------------------------------------------------------------
def sinusoid(dim, pos):
    """[cos(p*w_i), sin(p*w_i)], w_i = 10000^(-i/half), in float64."""
    half = dim // 2
    pos = pos.to(torch.float64).reshape(-1)
    w = torch.pow(10000.0, -(torch.arange(half, dtype=torch.float64) / half))
    ang = pos[:, None] * w[None, :]
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=1)


def rope_table(head_dim, max_pos=1024, theta=10000.0):
    """complex128 [max_pos, head_dim/2]: frame, height, width bands."""
    d = head_dim

    def band(n):
        inv = 1.0 / torch.pow(theta, torch.arange(0, n, 2, dtype=torch.float64) / n)
        ang = torch.arange(max_pos, dtype=torch.float64)[:, None] * inv[None, :]
        return torch.polar(torch.ones_like(ang), ang)

    return torch.cat([band(d - 4 * (d // 6)), band(2 * (d // 6)), band(2 * (d // 6))], dim=1)


def rope_rotate(x, grid, table):
    """x [S, n, d]; the first f*h*w rows are rotated (adjacent pairs as complex)."""
    f, h, w = grid
    L = f * h * w
    S, n, d = x.shape
    c = d // 2
    sizes = [c - 2 * (c // 3), c // 3, c // 3]
    tf, th, tw = table[:, :sizes[0]], table[:, sizes[0]:sizes[0] + sizes[1]], table[:, sizes[0] + sizes[1]:]
    per_tok = torch.cat([
        tf[:f].reshape(f, 1, 1, -1).expand(f, h, w, -1),
        th[:h].reshape(1, h, 1, -1).expand(f, h, w, -1),
        tw[:w].reshape(1, 1, w, -1).expand(f, h, w, -1)], dim=-1).reshape(L, 1, c)
    # no slice / cat when every row is a token (training): the same values, and
    # the backward skips zero-filling a full-size buffer per call
    z = torch.view_as_complex((x if L == S else x[:L]).to(torch.float64).reshape(L, n, c, 2).contiguous())
    rot = torch.view_as_real(z * per_tok).reshape(L, n, d).to(x.dtype)
    return rot if L == S else torch.cat([rot, x[L:]], dim=0)


def attend(q, k, v, k_len=None):
    """q [Sq, n, d], k/v [Sk, n, d] -> [Sq, n*d]; keys >= k_len are masked."""
    d = q.shape[-1]
    qh, kh, vh = q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1)
    s = torch.matmul(qh, kh.transpose(1, 2)) * (1.0 / math.sqrt(d))
    if k_len is not None and k_len < k.shape[0]:
        s[:, :, k_len:] = float("-inf")
    o = torch.matmul(torch.softmax(s, dim=-1), vh)
    return o.transpose(0, 1).reshape(q.shape[0], -1)


def dit_forward(W, cfg, x, t, context, seq_len, y=None, wan22=False, mids=None):
    """x [C,F,H,W], t [1] or [1,L] (float), context [Lc, text_dim] -> [out_dim,F,H,W].
    mids (dict) receives the intermediates under the golden-file names."""
    dt = W["patch_embedding.weight"].dtype
    dim, nh, eps = cfg["dim"], cfg["num_heads"], cfg["eps"]
    hd = dim // nh
    patch = tuple(cfg["patch_size"])
    rec = mids if mids is not None else {}

    if y is not None:
        x = torch.cat([x, y], dim=0)
    tok = F.conv3d(x[None].to(dt), W["patch_embedding.weight"], W["patch_embedding.bias"], stride=patch)
    grid = tuple(tok.shape[2:])
    L = grid[0] * grid[1] * grid[2]
    assert L <= seq_len, "seq_len below the token count"
    tok = tok.flatten(2).transpose(1, 2)[0]                      # [L, dim]
    h = torch.cat([tok, tok.new_zeros(seq_len - L, dim)], dim=0)  # [S, dim]
    rec["x_tokens"] = h[None]

    def lin(v, name):
        return F.linear(v, W[name + ".weight"], W[name + ".bias"])

    # time embedding
    if wan22:
        tt = t.reshape(1, -1)
        if tt.shape[1] == 1:
            tt = tt.expand(1, seq_len)
        assert tt.shape[1] == seq_len
        sin = sinusoid(cfg["freq_dim"], tt.reshape(-1)).reshape(1, seq_len, -1)
    else:
        sin = sinusoid(cfg["freq_dim"], t.reshape(-1))          # [1, freq]
    rec["t_sinusoid"] = sin
    e = lin(F.silu(lin(sin.to(dt), "time_embedding.0")), "time_embedding.2")
    e0 = lin(F.silu(e), "time_projection.1")
    e0 = e0.reshape(*e0.shape[:-1], 6, dim)
    rec["e"] = e
    rec["e0"] = e0

    # text embedding (zero padded, unmasked)
    ctx = context.to(dt)
    ctx = torch.cat([ctx, ctx.new_zeros(cfg["text_len"] - ctx.shape[0], ctx.shape[1])], dim=0)
    ctx = lin(F.gelu(lin(ctx, "text_embedding.0"), approximate="tanh"), "text_embedding.2")
    rec["context_emb"] = ctx[None]

    table = rope_table(hd)
    rec["rope_freqs"] = torch.view_as_real(table)

    def rms(v, name):
        if not cfg.get("qk_norm", True):
            return v
        return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + eps) * W[name + ".weight"]

    def ln(v, name=None):
        if name is None:
            return F.layer_norm(v, (dim,), None, None, eps)
        return F.layer_norm(v, (dim,), W[name + ".weight"], W[name + ".bias"], eps)

    S = seq_len
    for i in range(cfg["num_layers"]):
        p = "blocks.%d." % i
        if wan22:
            m = W[p + "modulation"][0][None] + e0[0]                # [S, 6, dim]
            mod = [m[:, j] for j in range(6)]
        else:
            m = W[p + "modulation"][0] + e0[0]                      # [6, dim]
            mod = [m[j][None] for j in range(6)]
        # self-attention
        u = ln(h) * (1 + mod[1]) + mod[0]
        q = rms(lin(u, p + "self_attn.q"), p + "self_attn.norm_q").reshape(S, nh, hd)
        k = rms(lin(u, p + "self_attn.k"), p + "self_attn.norm_k").reshape(S, nh, hd)
        v = lin(u, p + "self_attn.v").reshape(S, nh, hd)
        a = attend(rope_rotate(q, grid, table), rope_rotate(k, grid, table), v, k_len=L)
        h = h + lin(a, p + "self_attn.o") * mod[2]
        # cross-attention
        u = ln(h, p + "norm3") if cfg.get("cross_attn_norm", True) else h
        q = rms(lin(u, p + "cross_attn.q"), p + "cross_attn.norm_q").reshape(S, nh, hd)
        k = rms(lin(ctx, p + "cross_attn.k"), p + "cross_attn.norm_k").reshape(-1, nh, hd)
        v = lin(ctx, p + "cross_attn.v").reshape(-1, nh, hd)
        h = h + lin(attend(q, k, v), p + "cross_attn.o")
        # feed-forward
        u = ln(h) * (1 + mod[4]) + mod[3]
        u = lin(F.gelu(lin(u, p + "ffn.0"), approximate="tanh"), p + "ffn.2")
        h = h + u * mod[5]
        rec["block%d_out" % i] = h[None]

    if wan22:
        hm = W["head.modulation"][0][None] + e[0][:, None, :]     # [S, 2, dim]
        shift, scale = hm[:, 0], hm[:, 1]
    else:
        hm = W["head.modulation"][0] + e                          # [2, dim]
        shift, scale = hm[0][None], hm[1][None]
    out = lin(ln(h) * (1 + scale) + shift, "head.head")           # [S, prod(patch)*c]
    rec["head_out"] = out[None]

    c = cfg["out_dim"]
    f, gh, gw = grid
    pt, ph, pw = patch
    u = out[:L].reshape(f, gh, gw, pt, ph, pw, c).permute(6, 0, 3, 1, 4, 2, 5)
    return u.reshape(c, f * pt, gh * ph, gw * pw)


def dit_param_specs(cfg):
    """(name, shape, init) in WanModel.state_dict() order."""
    dim, ffn, fd, td = cfg["dim"], cfg["ffn_dim"], cfg["freq_dim"], cfg["text_dim"]
    patch = cfg["patch_size"]
    pp = patch[0] * patch[1] * patch[2]
    s = []

    def lin(name, fin, fout, w="xavier"):
        s.append((name + ".weight", [fout, fin], w))
        s.append((name + ".bias", [fout], "zeros"))

    s.append(("patch_embedding.weight", [dim, cfg["in_dim"]] + list(patch), "xavier"))
    s.append(("patch_embedding.bias", [dim], ("uniform", 1.0 / math.sqrt(cfg["in_dim"] * pp))))
    lin("text_embedding.0", td, dim, "normal02")
    lin("text_embedding.2", dim, dim, "normal02")
    lin("time_embedding.0", fd, dim, "normal02")
    lin("time_embedding.2", dim, dim, "normal02")
    lin("time_projection.1", dim, 6 * dim)
    for i in range(cfg["num_layers"]):
        p = "blocks.%d." % i
        s.append((p + "modulation", [1, 6, dim], "modulation"))
        for a in ("self_attn", "cross_attn"):
            if a == "cross_attn" and cfg.get("cross_attn_norm", True):
                s.append((p + "norm3.weight", [dim], "ones"))
                s.append((p + "norm3.bias", [dim], "zeros"))
            for n in "qkvo":
                lin(p + a + "." + n, dim, dim)
            if cfg.get("qk_norm", True):
                s.append((p + a + ".norm_q.weight", [dim], "ones"))
                s.append((p + a + ".norm_k.weight", [dim], "ones"))
        lin(p + "ffn.0", dim, ffn)
        lin(p + "ffn.2", ffn, dim)
    s.append(("head.modulation", [1, 2, dim], "modulation"))
    lin("head.head", dim, pp * cfg["out_dim"], "zeros")
    return s


# ----------------------------------------------------------------------------
# Wan VAE (2.1 and 2.2)
# ----------------------------------------------------------------------------
class WanVAE:
    def __init__(self, W, cfg, wan22):
        assert not cfg.get("attn_scales"), "attn_scales other than [] are not modelled"
        self.W, self.cfg, self.v22 = W, cfg, wan22
        self.cache = {}

    # -- primitives --------------------------------------------------------
    def conv3d(self, x, name, tpad, spad, tstride=1, cache=None):
        if cache is not None and tpad > 0:
            x = torch.cat([cache, x], dim=2)
            tpad -= cache.shape[2]
        x = F.pad(x, (spad, spad, spad, spad, tpad, 0))
        return F.conv3d(x, self.W[name + ".weight"], self.W[name + ".bias"], stride=(tstride, 1, 1))

    def cconv(self, x, name):
        """3x3x3 causal conv that carries its last two input frames to the next chunk."""
        prev = self.cache.get(name)
        keep = x[:, :, -2:].clone()
        if keep.shape[2] < 2 and prev is not None:
            keep = torch.cat([prev[:, :, -1:], keep], dim=2)
        k = self.W[name + ".weight"].shape[2]
        out = self.conv3d(x, name, k - 1, (self.W[name + ".weight"].shape[3] - 1) // 2, cache=prev)
        self.cache[name] = keep
        return out

    def rms(self, x, name):
        g = self.W[name + ".gamma"]
        return F.normalize(x, dim=1) * (x.shape[1] ** 0.5) * g

    def per_frame(self, x, fn):
        b, c, t, h, w = x.shape
        y = fn(x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w))
        return y.reshape(b, t, *y.shape[1:]).permute(0, 2, 1, 3, 4)

    def resblock(self, x, p):
        w2 = self.W[p + ".residual.2.weight"]
        sc = self.conv3d(x, p + ".shortcut", 0, 0) if (p + ".shortcut.weight") in self.W else x
        y = self.cconv(F.silu(self.rms(x, p + ".residual.0")), p + ".residual.2")
        y = self.cconv(F.silu(self.rms(y, p + ".residual.3")), p + ".residual.6")
        assert w2.shape[0] == y.shape[1]
        return y + sc

    def attn(self, x, p):
        def fn(v):
            n, c, h, w = v.shape
            u = F.normalize(v, dim=1) * (c ** 0.5) * self.W[p + ".norm.gamma"]
            qkv = F.conv2d(u, self.W[p + ".to_qkv.weight"], self.W[p + ".to_qkv.bias"])
            qkv = qkv.reshape(n, 3 * c, h * w).transpose(1, 2)     # [n, hw, 3c]
            q, k, vv = qkv[..., :c], qkv[..., c:2 * c], qkv[..., 2 * c:]
            a = torch.softmax(torch.matmul(q, k.transpose(1, 2)) / math.sqrt(c), dim=-1)
            o = torch.matmul(a, vv).transpose(1, 2).reshape(n, c, h, w)
            return F.conv2d(o, self.W[p + ".proj.weight"], self.W[p + ".proj.bias"])
        return x + self.per_frame(x, fn)

    def resample(self, x, p, mode):
        W = self.W
        if mode == "upsample3d":
            prev = self.cache.get(p, None)
            if p not in self.cache:
                self.cache[p] = "Rep"          # first chunk: no temporal doubling
            else:
                keep = x[:, :, -2:].clone()
                if keep.shape[2] < 2:
                    head = torch.zeros_like(keep) if isinstance(prev, str) else prev[:, :, -1:]
                    keep = torch.cat([head, keep], dim=2)
                y = self.conv3d(x, p + ".time_conv", 2, 0, cache=None if isinstance(prev, str) else prev)
                self.cache[p] = keep
                b, c2, t, h, w = y.shape
                c = c2 // 2
                y = y.reshape(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5)   # frame 2i <- first half
                x = y.reshape(b, c, 2 * t, h, w)
        if mode.startswith("upsample"):
            def fn(v):
                v = v.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
                return F.conv2d(v, W[p + ".resample.1.weight"], W[p + ".resample.1.bias"], padding=1)
        else:
            def fn(v):
                v = F.pad(v, (0, 1, 0, 1))
                return F.conv2d(v, W[p + ".resample.1.weight"], W[p + ".resample.1.bias"], stride=2)
        x = self.per_frame(x, fn)
        if mode == "downsample3d":
            if p not in self.cache:
                self.cache[p] = x.clone()
            else:
                prev = self.cache[p]
                keep = x[:, :, -1:].clone()
                x = self.conv3d(torch.cat([prev[:, :, -1:], x], dim=2), p + ".time_conv", 0, 0, tstride=2)
                self.cache[p] = keep
        return x

    @staticmethod
    def avg_down(x, cout, ft, fs):
        pad_t = (ft - x.shape[2] % ft) % ft
        x = F.pad(x, (0, 0, 0, 0, pad_t, 0))
        b, c, t, h, w = x.shape
        x = x.reshape(b, c, t // ft, ft, h // fs, fs, w // fs, fs).permute(0, 1, 3, 5, 7, 2, 4, 6)
        x = x.reshape(b, cout, c * ft * fs * fs // cout, t // ft, h // fs, w // fs)
        return x.mean(dim=2)

    @staticmethod
    def dup_up(x, cout, ft, fs, first_chunk):
        b, c, t, h, w = x.shape
        rep = cout * ft * fs * fs // c
        x = x.repeat_interleave(rep, dim=1).reshape(b, cout, ft, fs, fs, t, h, w)
        x = x.permute(0, 1, 5, 2, 6, 3, 7, 4).reshape(b, cout, t * ft, h * fs, w * fs)
        if first_chunk:
            x = x[:, :, ft - 1:]
        return x

    # -- encoder / decoder -------------------------------------------------
    def encoder(self, x):
        cfg = self.cfg
        nst = len(cfg["dim_mult"])
        tds = cfg["temperal_downsample"]
        x = self.cconv(x, "encoder.conv1")
        if not self.v22:
            k = 0
            for i in range(nst):
                for _ in range(cfg["num_res_blocks"]):
                    x = self.resblock(x, "encoder.downsamples.%d" % k)
                    k += 1
                if i != nst - 1:
                    x = self.resample(x, "encoder.downsamples.%d" % k,
                                      "downsample3d" if tds[i] else "downsample2d")
                    k += 1
        else:
            for i in range(nst):
                p = "encoder.downsamples.%d.downsamples." % i
                tflag = tds[i] if i < len(tds) else False
                down = i != nst - 1
                x0 = x
                for r in range(cfg["num_res_blocks"]):
                    x = self.resblock(x, p + str(r))
                if down:
                    x = self.resample(x, p + str(cfg["num_res_blocks"]),
                                      "downsample3d" if tflag else "downsample2d")
                x = x + self.avg_down(x0, x.shape[1], 2 if tflag else 1, 2 if down else 1)
        x = self.middle(x, "encoder")
        return self.cconv(F.silu(self.rms(x, "encoder.head.0")), "encoder.head.2")

    def middle(self, x, coder):
        """<coder>.middle.0/1/2: residual, attention, residual."""
        x = self.resblock(x, coder + ".middle.0")
        x = self.attn(x, coder + ".middle.1")
        return self.resblock(x, coder + ".middle.2")

    def decoder(self, x, first_chunk):
        cfg = self.cfg
        nst = len(cfg["dim_mult"])
        tus = cfg["temperal_downsample"][::-1]
        x = self.cconv(x, "decoder.conv1")
        x = self.middle(x, "decoder")
        if not self.v22:
            k = 0
            for i in range(nst):
                for _ in range(cfg["num_res_blocks"] + 1):
                    x = self.resblock(x, "decoder.upsamples.%d" % k)
                    k += 1
                if i != nst - 1:
                    x = self.resample(x, "decoder.upsamples.%d" % k,
                                      "upsample3d" if tus[i] else "upsample2d")
                    k += 1
        else:
            for i in range(nst):
                p = "decoder.upsamples.%d.upsamples." % i
                tflag = tus[i] if i < len(tus) else False
                up = i != nst - 1
                xm = x
                for r in range(cfg["num_res_blocks"] + 1):
                    xm = self.resblock(xm, p + str(r))
                if up:
                    xm = self.resample(xm, p + str(cfg["num_res_blocks"] + 1),
                                       "upsample3d" if tflag else "upsample2d")
                    xm = xm + self.dup_up(x, xm.shape[1], 2 if tflag else 1, 2, first_chunk)
                x = xm
        return self.cconv(F.silu(self.rms(x, "decoder.head.0")), "decoder.head.2")

    def encode(self, video, mean, inv_std, mids=None):
        x = video
        if self.v22:
            b, c, t, H, Wd = x.shape   # b c f (h q) (w r) -> b (c r q) f h w
            x = x.reshape(b, c, t, H // 2, 2, Wd // 2, 2).permute(0, 1, 6, 4, 2, 3, 5)
            x = x.reshape(b, c * 4, t, H // 2, Wd // 2)
        self.cache = {}
        T = x.shape[2]
        outs = [self.encoder(x[:, :, :1])]
        for i in range(1, 1 + (T - 1) // 4):
            outs.append(self.encoder(x[:, :, 1 + 4 * (i - 1):1 + 4 * i]))
        self.cache = {}
        h = torch.cat(outs, dim=2)
        h = self.conv3d(h, "conv1", 0, 0)
        if mids is not None:
            mids["enc_conv1_out"] = h
        z = self.cfg["z_dim"]
        mu = h[:, :z]
        return (mu - mean.reshape(1, z, 1, 1, 1)) * inv_std.reshape(1, z, 1, 1, 1)

    def decode(self, lat, mean, inv_std, mids=None):
        z = self.cfg["z_dim"]
        lat = lat / inv_std.reshape(1, z, 1, 1, 1) + mean.reshape(1, z, 1, 1, 1)
        x = self.conv3d(lat, "conv2", 0, 0)
        if mids is not None:
            mids["dec_conv2_out"] = x
        self.cache = {}
        outs = [self.decoder(x[:, :, i:i + 1], first_chunk=(i == 0)) for i in range(x.shape[2])]
        self.cache = {}
        out = torch.cat(outs, dim=2)
        if self.v22:   # b (c r q) f h w -> b c f (h q) (w r)
            b, c4, t, h, w = out.shape
            out = out.reshape(b, c4 // 4, 2, 2, t, h, w).permute(0, 1, 4, 5, 3, 6, 2)
            out = out.reshape(b, c4 // 4, t, h * 2, w * 2)
        return out


def vae_param_specs(cfg, wan22):
    """(name, shape, init) in WanVAE_.state_dict() order."""
    s = []
    dim, z = cfg["dim"], cfg["z_dim"]
    mult, nrb = cfg["dim_mult"], cfg["num_res_blocks"]
    tds = cfg["temperal_downsample"]
    nst = len(mult)

    def conv(name, cout, cin, k):
        k = list(k) if isinstance(k, (list, tuple)) else [k] * 3
        fan = cin * int(np.prod(k))
        s.append((name + ".weight", [cout, cin] + k, ("uniform", 1.0 / math.sqrt(fan))))
        s.append((name + ".bias", [cout], ("uniform", 1.0 / math.sqrt(fan))))

    def conv2(name, cout, cin, k, zero_w=False):
        fan = cin * k * k
        s.append((name + ".weight", [cout, cin, k, k], "zeros" if zero_w else ("uniform", 1.0 / math.sqrt(fan))))
        s.append((name + ".bias", [cout], ("uniform", 1.0 / math.sqrt(fan))))

    def res(p, cin, cout):
        s.append((p + ".residual.0.gamma", [cin, 1, 1, 1], "ones"))
        conv(p + ".residual.2", cout, cin, 3)
        s.append((p + ".residual.3.gamma", [cout, 1, 1, 1], "ones"))
        conv(p + ".residual.6", cout, cout, 3)
        if cin != cout:
            conv(p + ".shortcut", cout, cin, 1)

    def attn(p, c):
        s.append((p + ".norm.gamma", [c, 1, 1], "ones"))
        conv2(p + ".to_qkv", 3 * c, c, 1)
        conv2(p + ".proj", c, c, 1, zero_w=True)

    def resample(p, c, mode):
        if mode.startswith("up"):
            conv2(p + ".resample.1", c if wan22 else c // 2, c, 3)
            if mode == "upsample3d":
                conv(p + ".time_conv", 2 * c, c, (3, 1, 1))
        else:
            conv2(p + ".resample.1", c, c, 3)
            if mode == "downsample3d":
                conv(p + ".time_conv", c, c, (3, 1, 1))

    # encoder
    dims = [dim * u for u in [1] + mult]
    conv("encoder.conv1", dims[0], 12 if wan22 else 3, 3)
    k = 0
    for i, (ci, co) in enumerate(zip(dims[:-1], dims[1:])):
        tflag = tds[i] if i < len(tds) else False
        mode = "downsample3d" if tflag else "downsample2d"
        if wan22:
            p = "encoder.downsamples.%d.downsamples." % i
            for r in range(nrb):
                res(p + str(r), ci, co)
                ci = co
            if i != nst - 1:
                resample(p + str(nrb), co, mode)
        else:
            for _ in range(nrb):
                res("encoder.downsamples.%d" % k, ci, co)
                ci = co
                k += 1
            if i != nst - 1:
                resample("encoder.downsamples.%d" % k, co, mode)
                k += 1
    c = dims[-1]
    res("encoder.middle.0", c, c)
    attn("encoder.middle.1", c)
    res("encoder.middle.2", c, c)
    s.append(("encoder.head.0.gamma", [c, 1, 1, 1], "ones"))
    conv("encoder.head.2", 2 * z, c, 3)
    conv("conv1", 2 * z, 2 * z, 1)
    conv("conv2", z, z, 1)
    # decoder
    ddim = cfg["dec_dim"] if wan22 else dim
    dims = [ddim * u for u in [mult[-1]] + mult[::-1]]
    tus = tds[::-1]
    conv("decoder.conv1", dims[0], z, 3)
    c = dims[0]
    res("decoder.middle.0", c, c)
    attn("decoder.middle.1", c)
    res("decoder.middle.2", c, c)
    k = 0
    for i, (ci, co) in enumerate(zip(dims[:-1], dims[1:])):
        tflag = tus[i] if i < len(tus) else False
        mode = "upsample3d" if tflag else "upsample2d"
        if wan22:
            p = "decoder.upsamples.%d.upsamples." % i
            for r in range(nrb + 1):
                res(p + str(r), ci, co)
                ci = co
            if i != nst - 1:
                resample(p + str(nrb + 1), co, mode)
        else:
            if i in (1, 2, 3):
                ci = ci // 2
            for _ in range(nrb + 1):
                res("decoder.upsamples.%d" % k, ci, co)
                ci = co
                k += 1
            if i != nst - 1:
                resample("decoder.upsamples.%d" % k, co, mode)
                k += 1
    s.append(("decoder.head.0.gamma", [dims[-1], 1, 1, 1], "ones"))
    conv("decoder.head.2", 12 if wan22 else 3, dims[-1], 3)
    return s


# ----------------------------------------------------------------------------
# Flow-matching schedulers
# ----------------------------------------------------------------------------
def _unipc_sigma_max():
    # FlowUniPC builds a 1000-entry float32 table with shift 1; set_timesteps
    # then starts from its first entry (0.999 as float32) down to 0.
    alphas = np.linspace(1, 1 / 1000, 1000)[::-1].copy()
    tab = torch.from_numpy(1.0 - alphas).to(torch.float32)
    tab = 1 * tab / (1 + (1 - 1) * tab)
    return tab[0].item(), tab[-1].item()


def unipc_schedule(steps, shift):
    smax, smin = _unipc_sigma_max()
    sig = np.linspace(smax, smin, steps + 1).copy()[:-1]
    sig = shift * sig / (1 + (shift - 1) * sig)
    ts = torch.from_numpy(sig * 1000).to(torch.int64)
    sg = torch.from_numpy(np.concatenate([sig, [0]]).astype(np.float32))
    return ts, sg


def dpmpp_schedule(steps, shift):
    sig = np.linspace(1, 0, steps + 1)[:steps]
    sig = shift * sig / (1 + (shift - 1) * sig)      # get_sampling_sigmas
    sig = np.asarray(sig)
    sig = 1 * sig / (1 + (1 - 1) * sig)              # set_timesteps with the init shift 1
    ts = torch.from_numpy(sig * 1000).to(torch.int64)
    sg = torch.from_numpy(np.concatenate([sig, [0]]).astype(np.float32))
    return ts, sg


def _lam(s):
    return torch.log(1 - s) - torch.log(s)


class FlowSolver:
    """kind 'unipc' (bh2, predict_x0, order 2, lower_order_final) or 'dpmpp'
    (dpmsolver++, order 2, midpoint, final sigma zero)."""

    def __init__(self, kind, steps, shift, dtype=torch.float32):
        self.kind = kind
        self.timesteps, sg = (unipc_schedule if kind == "unipc" else dpmpp_schedule)(steps, shift)
        self.sigmas32 = sg
        self.sigmas = sg.to(dtype)
        self.dtype = dtype
        self.outs = [None, None]
        self.last_sample = None
        self.lower = 0
        self.idx = None
        self.order = None

    def _init_index(self, t):
        hit = (self.timesteps == t).nonzero()
        self.idx = int(hit[1 if len(hit) > 1 else 0].item())

    def step(self, model_out, t, sample):
        if self.idx is None:
            self._init_index(t)
        if self.kind == "unipc":
            return self._unipc(model_out, sample)
        return self._dpmpp(model_out, sample)

    # UniPC ----------------------------------------------------------------
    def _unipc(self, mo, x):
        i, sg, N = self.idx, self.sigmas, len(self.timesteps)
        conv = x - sg[i] * mo
        if i > 0 and self.last_sample is not None:
            x = self._uni_c(conv, self.last_sample, x, self.order)
        self.outs = [self.outs[1], conv]
        order = min(2, N - i)
        self.order = min(order, self.lower + 1)
        self.last_sample = x
        prev = self._uni_p(x, self.order)
        self.lower = min(self.lower + 1, 2)
        self.idx += 1
        return prev

    def _uni_p(self, x, order):
        i, sg = self.idx, self.sigmas
        m0 = self.outs[1]
        s_t, s_0 = sg[i + 1], sg[i]
        a_t = 1 - s_t
        l_0 = _lam(s_0)
        h = _lam(s_t) - l_0
        hh = -h
        phi1 = torch.expm1(hh)
        B = torch.expm1(hh)
        xt = s_t / s_0 * x - a_t * phi1 * m0
        if order == 2:
            rk = (_lam(sg[i - 1]) - l_0) / h
            D1 = (self.outs[0] - m0) / rk
            xt = xt - a_t * B * (0.5 * D1)
        return xt

    def _uni_c(self, model_t, x, this_sample, order):
        i, sg = self.idx, self.sigmas
        m0 = self.outs[1]
        s_t, s_0 = sg[i], sg[i - 1]
        a_t = 1 - s_t
        l_0 = _lam(s_0)
        h = _lam(s_t) - l_0
        hh = -h
        phi1 = torch.expm1(hh)
        B = torch.expm1(hh)
        D1 = None
        rks = [torch.ones((), dtype=self.dtype)]
        if order == 2:
            rk = (_lam(sg[i - 2]) - l_0) / h
            D1 = (self.outs[0] - m0) / rk
            rks = [rk.reshape(()), torch.ones((), dtype=self.dtype)]
        rks = torch.stack(rks)
        R, b = [], []
        hpk = phi1 / hh - 1
        fac = 1
        for k in range(1, order + 1):
            R.append(torch.pow(rks, k - 1))
            b.append(hpk * fac / B)
            fac *= k + 1
            hpk = hpk / hh - 1 / fac
        if order == 1:
            rho = torch.tensor([0.5], dtype=self.dtype)
        else:
            rho = torch.linalg.solve(torch.stack(R), torch.stack(b))
        xt = s_t / s_0 * x - a_t * phi1 * m0
        corr = rho[0] * D1 if D1 is not None else 0
        return xt - a_t * B * (corr + rho[-1] * (model_t - m0))

    # DPM-Solver++ -----------------------------------------------------------
    def _dpmpp(self, mo, x):
        i, sg, N = self.idx, self.sigmas, len(self.timesteps)
        m = x - sg[i] * mo
        self.outs = [self.outs[1], m]
        s_t, s_0 = sg[i + 1], sg[i]
        a_t = 1 - s_t
        h = _lam(s_t) - _lam(s_0)
        if self.lower < 1 or i == N - 1:
            prev = (s_t / s_0) * x - (a_t * (torch.exp(-h) - 1.0)) * m
        else:
            h0 = _lam(s_0) - _lam(sg[i - 1])
            r0 = h0 / h
            D1 = (1.0 / r0) * (m - self.outs[0])
            prev = ((s_t / s_0) * x - (a_t * (torch.exp(-h) - 1.0)) * m
                    - 0.5 * (a_t * (torch.exp(-h) - 1.0)) * D1)
        self.lower = min(self.lower + 1, 2)
        self.idx += 1
        return prev


def sample_cfg(W, dcfg, kind, steps, shift, guide, noise, ctx, ctx_null, seq_len, dtype):
    """The WanT2V.generate loop; returns (solver, list of (cond, guided, latent))."""
    sol = FlowSolver(kind, steps, shift, dtype)
    lat = noise.to(dtype)
    rec = []
    for t in sol.timesteps:
        ts = torch.stack([t])                       # int64 [1]
        cond = dit_forward(W, dcfg, lat, ts, ctx, seq_len)
        unc = dit_forward(W, dcfg, lat, ts, ctx_null, seq_len)
        pred = unc + guide * (cond - unc)
        lat = sol.step(pred[None], t, lat[None])[0]
        rec.append((cond, pred, lat))
    return sol, rec


def shift_name(S):
    return "shift%s" % format(float(S), "g")


# ----------------------------------------------------------------------------
# Running a case from a (file-like) dict of tensors
# ----------------------------------------------------------------------------
def _t(a, dtype=None):
    x = torch.from_numpy(np.array(a))
    return x.to(dtype) if dtype is not None and x.is_floating_point() else x


def run_dit_case(T, cfg, wan22, dtype):
    W = weights_of(T, dtype)
    mids = {}
    y = _t(T["in.y"], dtype) if "in.y" in T else None
    out = dit_forward(W, cfg, _t(T["in.x"], dtype), _t(T["in.t"]), _t(T["in.context"], dtype),
                      int(T["in.seq_len"].reshape(-1)[0]), y=y, wan22=wan22, mids=mids)
    res = {"mid." + k: v for k, v in mids.items()}
    res["out.x"] = out
    return res


def run_vae_case(T, cfg, wan22, dtype):
    vae = WanVAE(weights_of(T, dtype), cfg, wan22)
    mean, inv = _t(T["in.scale_mean"], dtype), _t(T["in.scale_inv_std"], dtype)
    mids = {}
    mu = vae.encode(_t(T["in.video"], dtype), mean, inv, mids)
    dec = vae.decode(_t(T["in.latent"], dtype), mean, inv, mids)
    return {"mid.enc_conv1_out": mids["enc_conv1_out"], "out.mu": mu,
            "mid.dec_conv2_out": mids["dec_conv2_out"], "out.decoded": dec}


def run_flow_case(T, cfg, dtype):
    res = {}
    for steps, S in cfg["schedules"]:
        for kind in ("unipc", "dpmpp"):
            ts, sg = (unipc_schedule if kind == "unipc" else dpmpp_schedule)(int(steps), S)
            p = "out.%s_steps%d_%s" % (kind, int(steps), shift_name(S))
            res[p + ".timesteps"] = ts
            res[p + ".sigmas"] = sg
    tr = cfg["trajectory"]
    W = weights_of(T, dtype)
    for kind in ("unipc", "dpmpp"):
        pre = kind + "_traj"
        sol, rec = sample_cfg(W, cfg["dit"], kind, int(tr["steps"]), tr["shift"], tr["guide_scale"],
                              _t(T["in.noise"], dtype), _t(T["in.context"], dtype),
                              _t(T["in.context_null"], dtype), int(tr["seq_len"]), dtype)
        for i, (c, g, l) in enumerate(rec):
            res["mid.%s.noise_pred_cond_%d" % (pre, i)] = c
            res["mid.%s.noise_pred_%d" % (pre, i)] = g
            res["out.%s.latent_%d" % (pre, i)] = l
        res["out.%s.final" % pre] = rec[-1][2]
        res["out.%s.timesteps" % pre] = sol.timesteps
        res["out.%s.sigmas" % pre] = sol.sigmas32
    return res


def kind_of(T, meta):
    ref = meta.get("reference", "")
    if "in.noise" in T and "in.guide_scale" in T:
        return "flow"
    if "in.video" in T:
        return "vae22" if "vae2_2" in ref else "vae21"
    if "in.x" in T and "weights.patch_embedding.weight" in T:
        return "dit22" if "Wan2.2" in ref else "dit21"
    return None


def run_case(T, meta, dtype):
    cfg = json.loads(meta["config"])
    k = kind_of(T, meta)
    if k in ("dit21", "dit22"):
        return run_dit_case(T, cfg, k == "dit22", dtype)
    if k in ("vae21", "vae22"):
        return run_vae_case(T, cfg, k == "vae22", dtype)
    if k == "flow":
        return run_flow_case(T, cfg, dtype)
    raise ValueError("unknown golden kind")


def tolerance(kind, name):
    if name.endswith(".timesteps"):
        return 0.0
    if name.endswith(".sigmas"):
        return 1e-7
    if kind.startswith("dit"):
        return 2e-5
    if kind.startswith("vae"):
        return 1e-4 if name == "out.decoded" else 5e-5
    return 5e-5


def to_np(v):
    if v.dtype == torch.int64:
        return v.numpy().astype(np.int64)
    return v.detach().to(torch.float32).numpy()


# ----------------------------------------------------------------------------
# --verify
# ----------------------------------------------------------------------------
VERIFY_FILES = ["wan21_dit_t2v", "wan22_dit_ti2v", "wan21_vae", "wan22_vae", "flow_unipc_schedule"]


def verify(directory, names=None):
    ok_all = True
    rows = []
    files = names or VERIFY_FILES
    for base in files:
        path = os.path.join(directory, base + ".safetensors")
        if not os.path.exists(path):
            print("MISSING %s" % path)
            ok_all = False
            continue
        T, meta = st_read(path)
        kind = kind_of(T, meta)
        with torch.no_grad():
            res = run_case(T, meta, torch.float32)
        print("== %s (%s)" % (base, kind))
        checked = set()
        for name in T:
            if not (name.startswith("out.") or name.startswith("mid.")):
                continue
            if name not in res:
                print("  %-44s NOT COMPUTED" % name)
                ok_all = False
                continue
            mine, ref = to_np(res[name]), T[name]
            checked.add(name)
            if mine.shape != ref.shape:
                print("  %-44s SHAPE %s vs %s" % (name, mine.shape, ref.shape))
                ok_all = False
                continue
            tol = tolerance(kind, name)
            if ref.dtype == np.int64:
                err = float(np.max(np.abs(mine - ref))) if ref.size else 0.0
            else:
                err = float(np.max(np.abs(mine.astype(np.float64) - ref.astype(np.float64))))
            good = err <= tol
            ok_all &= good
            rows.append((base, name, err, tol, good))
            print("  %-44s max_abs %.3e  tol %.0e  %s" % (name, err, tol, "ok" if good else "FAIL"))
        extra = [n for n in res if n not in checked]
        if extra:
            print("  (computed but absent from the file: %s)" % ", ".join(extra))
    print("VERIFY %s" % ("PASSED" if ok_all else "FAILED"))
    return ok_all, rows


# ----------------------------------------------------------------------------
# --out: alternate configurations
# ----------------------------------------------------------------------------
def init_values(rng, shape, init):
    """float64 [numel] drawn as WanModel initialises a parameter of this kind
    (xavier over the flattened [out, in * kernel] matrix, as Wan's init_weights)."""
    n = int(np.prod(shape))
    if init == "zeros":
        return np.zeros(n)
    if init == "ones":
        return np.ones(n)
    if init == "normal02":
        return rng.standard_normal(n) * 0.02
    if init == "modulation":
        return rng.standard_normal(n) / math.sqrt(shape[-1])
    if init == "xavier":
        fout, fin = shape[0], n // shape[0]
        b = math.sqrt(6.0 / (fin + fout))
        return rng.uniform(-b, b, n)
    if isinstance(init, tuple) and init[0] == "uniform":
        return rng.uniform(-init[1], init[1], n)
    if isinstance(init, tuple) and init[0] == "normal":
        return rng.standard_normal(n) * init[1]
    raise ValueError(init)


def make_weights(specs, seed):
    rng = np.random.default_rng(seed)
    items = []
    for name, shape, init in specs:
        w = init_values(rng, shape, init)
        w = w + rng.standard_normal(w.size) * 0.02      # make zero/one inits non-trivial
        items.append(("weights." + name, w.reshape(shape).astype(np.float32)))
    return items


def f64_report(res32, res64):
    worst = None
    for name, v in res32.items():
        if not name.startswith("out.") or v.dtype == torch.int64 or name.endswith(".sigmas"):
            continue
        a = v.detach().to(torch.float64)
        b = res64[name].detach().to(torch.float64)
        d = float((a - b).abs().max())
        if worst is None or d > worst[1]:
            worst = (name, d, float(b.abs().max()))
    name, d, mx = worst
    return json.dumps({"worst_output": name, "max_abs": d, "max_ref": mx,
                       "rel_to_max": d / mx if mx else 0.0,
                       "note": "float64 re-run of scripts/make_golden.py's own implementation "
                               "(same weights/inputs upcast, sigma tables upcast), not of the "
                               "reference code"})


def not_measured():
    return json.dumps({"worst_output": None, "max_abs": None,
                       "note": "not measured (generated with --no-f64)"})


def save_case(path, tensors, meta_base, res_keys_order, do_f64):
    """tensors: ordered list of (name, np array) holding weights.* and in.*;
    res_keys_order: names of mid./out. tensors in file order (computed)."""
    T = dict(tensors)
    with torch.no_grad():
        res = run_case(T, meta_base, torch.float32)
        f64 = f64_report(res, run_case(T, meta_base, torch.float64)) if do_f64 else not_measured()
    items = list(tensors)
    for k in res_keys_order:
        items.append((k, to_np(res[k])))
    missing = [k for k in res if k not in res_keys_order]
    assert not missing, missing
    meta = dict(meta_base)
    meta["dtype"] = DTYPE_NOTE
    meta["generator"] = GENERATOR
    meta["f32_vs_f64"] = f64
    st_write(path, items, meta)
    return res


DIT_DESC = ("{ver} DiT (WanModel, model_type={mt}) single forward: model([in.x], t=in.t, "
            "context=[in.context], seq_len=in.seq_len{yarg})[0] -> out.x. {tdesc} Tokens are [B, L, dim] "
            "with L ordered (f, h, w) row-major over the patch grid{pad}. mid.rope_freqs is the "
            "complex128 table WanModel.freqs stored as float32 [1024, head_dim/2, 2] (re, im). "
            "Alternate configuration with random weights made by scripts/make_golden.py.")


def dit_cfg(model_type, **kw):
    c = {"model_type": model_type, "patch_size": [1, 2, 2], "text_len": 512, "in_dim": 16,
         "dim": 2048, "ffn_dim": 8192, "freq_dim": 256, "text_dim": 4096, "out_dim": 16,
         "num_heads": 16, "num_layers": 32, "window_size": [-1, -1], "qk_norm": True,
         "cross_attn_norm": True, "eps": 1e-06}
    c.update(kw)
    return c


def gen_dit(outdir, name, cfg, wan22, grid, t_vals, ctx_len, seq_len, seed, do_f64, y_ch=0):
    rng = np.random.default_rng(seed + 1000)
    Fr, H, Wd = grid
    cx = cfg["in_dim"] - y_ch
    tensors = make_weights(dit_param_specs(cfg), seed)
    tensors.append(("in.x", rng.standard_normal((cx, Fr, H, Wd)).astype(np.float32)))
    if y_ch:
        # i2v condition: 4 mask channels (1 on the first latent frame) + 16 image-latent channels
        msk = np.zeros((4, Fr, H, Wd), np.float32)
        msk[:, 0] = 1.0
        img = rng.standard_normal((y_ch - 4, Fr, H, Wd)).astype(np.float32)
        tensors.append(("in.y", np.concatenate([msk, img], axis=0)))
    tensors.append(("in.t", np.asarray(t_vals, np.float32)))
    tensors.append(("in.context", rng.standard_normal((ctx_len, cfg["text_dim"])).astype(np.float32)))
    tensors.append(("in.seq_len", np.asarray([seq_len], np.int64)))
    ntok = (Fr // cfg["patch_size"][0]) * (H // cfg["patch_size"][1]) * (Wd // cfg["patch_size"][2])
    if wan22 and np.asarray(t_vals).size > 1:
        tdesc = ("in.t is the per-token timestep [1,seq_len] built as in wan/textimage2video.py "
                 "(first latent frame tokens t=0, the others t=%g)." % float(np.max(t_vals)))
    elif wan22:
        tdesc = ("in.t is a [1] float timestep; the Wan2.2 forward expands it to every one of the "
                 "seq_len tokens, so mid.t_sinusoid/e/e0 are per token ([1,seq_len,...]).")
    else:
        tdesc = "in.t is a [1] float timestep."
    pad = ""
    if seq_len > ntok:
        pad = ("; x is zero-padded from %d tokens to seq_len=%d and self-attention masks the "
               "padded keys (k_lens = token count); the mid.* token tensors keep all seq_len rows "
               "and unpatchify drops the padded ones" % (ntok, seq_len))
    meta = {"config": json.dumps(cfg), "reference": REF_DIT22 if wan22 else REF_DIT21,
            "seq_len": str(seq_len),
            "description": DIT_DESC.format(
                ver="Wan2.2" if wan22 else "Wan2.1", mt=cfg["model_type"],
                yarg=", y=[in.y]" if y_ch else "", tdesc=tdesc, pad=pad)}
    if y_ch:
        meta["description"] += (" i2v layout: in.y ([%d,F,H,W]: 4 mask channels, then the image "
                                "latent) is concatenated after in.x along the channels (in_dim=%d); "
                                "no CLIP image embedding." % (y_ch, cfg["in_dim"]))
    order = (["mid.t_sinusoid", "mid.e", "mid.e0", "mid.context_emb", "mid.x_tokens"]
             + ["mid.block%d_out" % i for i in range(cfg["num_layers"])]
             + ["mid.head_out", "mid.rope_freqs", "out.x"])
    path = os.path.join(outdir, name + ".safetensors")
    save_case(path, tensors, meta, order, do_f64)
    return path


def vae_video(rng, T, H, W):
    t = np.arange(T)[None, :, None, None]
    yy = np.arange(H)[None, None, :, None] / H
    xx = np.arange(W)[None, None, None, :] / W
    c = np.arange(3)[:, None, None, None]
    v = (0.6 * np.sin(2 * np.pi * (1.3 * xx + 0.7 * yy) + 0.35 * t + 1.1 * c)
         + 0.25 * np.cos(2 * np.pi * (2.1 * yy - 0.4 * xx) - 0.2 * t + 0.5 * c))
    v = v + 0.08 * rng.standard_normal(v.shape)
    return np.clip(v, -1, 1).astype(np.float32)[None]


def gen_vae(outdir, name, cfg, wan22, video_shape, seed, do_f64):
    rng = np.random.default_rng(seed + 1000)
    T, H, W = video_shape
    z = cfg["z_dim"]
    tensors = make_weights(vae_param_specs(cfg, wan22), seed)
    tensors.append(("in.video", vae_video(rng, T, H, W)))
    tensors.append(("in.scale_mean", (0.3 * rng.standard_normal(z)).astype(np.float32)))
    tensors.append(("in.scale_inv_std", rng.uniform(0.6, 1.8, z).astype(np.float32)))
    down_s = 2 ** (len(cfg["dim_mult"]) - 1) * (2 if wan22 else 1)
    down_t = 2 ** sum(1 for f in cfg["temperal_downsample"] if f)
    lt = 1 + (T - 1) // down_t
    tensors.append(("in.latent", rng.standard_normal((1, z, lt, H // down_s, W // down_s)).astype(np.float32)))
    if wan22:
        desc = ("Wan2.2 VAE (raw WanVAE_, tiny config). out.mu = WanVAE_.encode(in.video, scale) with "
                "scale=[in.scale_mean, in.scale_inv_std] i.e. mu=(mu_raw-mean)*inv_std; chunked causal "
                "encode (frame 0, then groups of 4 frames, feature cache). mid.enc_conv1_out = output of "
                "WanVAE_.conv1 = cat(mu_raw, log_var) over channels. out.decoded = WanVAE_.decode(in.latent, "
                "scale): z/inv_std+mean -> conv2 (mid.dec_conv2_out) -> decoder one latent frame at a time "
                "with causal cache; NOT clamped (the Wan wrapper clamps to [-1,1]). Layout [B,C,T,H,W]. "
                "Wan2.2: patchify(2) before the encoder, unpatchify(2) after the decoder (einops "
                "\"b c f (h q) (w r) -> b (c r q) f h w\").")
    else:
        desc = ("Wan2.1 VAE (raw WanVAE_, tiny config). out.mu = WanVAE_.encode(in.video, scale) with "
                "scale=[in.scale_mean, in.scale_inv_std] i.e. mu=(mu_raw-mean)*inv_std; chunked causal "
                "encode (frame 0, then groups of 4 frames, feature cache). mid.enc_conv1_out = output of "
                "WanVAE_.conv1 = cat(mu_raw, log_var) over channels. out.decoded = WanVAE_.decode(in.latent, "
                "scale): z/inv_std+mean -> conv2 (mid.dec_conv2_out) -> decoder one latent frame at a time "
                "with causal cache; NOT clamped (the Wan wrapper clamps to [-1,1]). Layout [B,C,T,H,W].")
    desc += " Alternate configuration with random weights made by scripts/make_golden.py."
    meta = {"config": json.dumps(cfg), "reference": REF_VAE22 if wan22 else REF_VAE21,
            "description": desc}
    path = os.path.join(outdir, name + ".safetensors")
    save_case(path, tensors, meta, ["mid.enc_conv1_out", "out.mu", "mid.dec_conv2_out", "out.decoded"],
              do_f64)
    return path


def gen_flow(outdir, name, dcfg, dseed, schedules, steps, shift, guide, grid, ctx_len, null_len,
             seed, do_f64):
    rng = np.random.default_rng(seed + 1000)
    Fr, H, Wd = grid
    p = dcfg["patch_size"]
    seq_len = (Fr // p[0]) * (H // p[1]) * (Wd // p[2])
    cfg = {"dit": dcfg, "num_train_timesteps": 1000, "scheduler_init_shift": 1,
           "use_dynamic_shifting": False, "solver_order": 2,
           "unipc": {"solver_type": "bh2", "predict_x0": True, "lower_order_final": True,
                     "final_sigmas_type": "zero", "disable_corrector": []},
           "dpmpp": {"algorithm_type": "dpmsolver++", "solver_type": "midpoint",
                     "lower_order_final": True, "final_sigmas_type": "zero"},
           "schedules": [[int(n), float(s)] for n, s in schedules],
           "trajectory": {"steps": steps, "shift": float(shift), "guide_scale": float(guide),
                          "seq_len": seq_len}}
    meta = {"config": json.dumps(cfg), "reference": REF_FLOW,
            "description": (
                "Flow-matching schedules and CFG sampling trajectories. out.unipc_stepsN_shiftS."
                "{timesteps,sigmas}: FlowUniPCMultistepScheduler(num_train_timesteps=1000, shift=1, "
                "use_dynamic_shifting=False).set_timesteps(N, shift=S); timesteps int64 (truncated), "
                "sigmas float32 with a final 0 appended (N+1). dpmpp_*: FlowDPMSolverMultistepScheduler + "
                "get_sampling_sigmas(N,S) + retrieve_timesteps(sigmas=...). S is spelled with Python's "
                "format(S, 'g') (5.0 -> shift5, 2.5 -> shift2.5). Trajectories (prefix unipc_traj / "
                "dpmpp_traj): latents=[in.noise]; for each t: cond=model(latents, t=stack([t]) (int64), "
                "context=[in.context], seq_len); uncond with [in.context_null]; noise_pred = uncond + "
                "g*(cond-uncond); latent = sched.step(noise_pred[None], t, latent[None], "
                "return_dict=False)[0][0]. out.<prefix>.latent_i is the latent after step i; .final the "
                "last one. Weights are the DiT weights used (weights.*), identical to "
                "alt_dit_t2v.safetensors. Made by scripts/make_golden.py.")}
    # placeholders for the schedule tensors (they come first in the file, like the shipped one)
    sched_names = []
    for n, s in schedules:
        for kind in ("unipc", "dpmpp"):
            pre = "out.%s_steps%d_%s" % (kind, n, shift_name(s))
            sched_names += [pre + ".timesteps", pre + ".sigmas"]
    weights = make_weights(dit_param_specs(dcfg), dseed)
    ins = [("in.noise", rng.standard_normal((dcfg["in_dim"], Fr, H, Wd)).astype(np.float32)),
           ("in.context", rng.standard_normal((ctx_len, dcfg["text_dim"])).astype(np.float32)),
           ("in.context_null", rng.standard_normal((null_len, dcfg["text_dim"])).astype(np.float32)),
           ("in.seq_len", np.asarray([seq_len], np.int64)),
           ("in.guide_scale", np.asarray([guide], np.float32))]
    T = dict(weights + ins)
    with torch.no_grad():
        res = run_case(T, meta, torch.float32)
        f64 = f64_report(res, run_case(T, meta, torch.float64)) if do_f64 else not_measured()
    items = [(k, to_np(res[k])) for k in sched_names] + weights + ins
    for pre in ("unipc_traj", "dpmpp_traj"):
        for i in range(steps):
            for k in ("mid.%s.noise_pred_cond_%d" % (pre, i), "mid.%s.noise_pred_%d" % (pre, i),
                      "out.%s.latent_%d" % (pre, i)):
                items.append((k, to_np(res[k])))
        for k in ("final", "timesteps", "sigmas"):
            items.append(("out.%s.%s" % (pre, k), to_np(res["out.%s.%s" % (pre, k)])))
    assert len(items) == len(set(k for k, _ in items))
    meta["dtype"] = DTYPE_NOTE
    meta["generator"] = GENERATOR
    meta["f32_vs_f64"] = f64
    path = os.path.join(outdir, name + ".safetensors")
    st_write(path, items, meta)
    return path


ALT_T2V = dit_cfg("t2v", text_len=12, in_dim=16, dim=96, ffn_dim=160, freq_dim=256, text_dim=48,
                  out_dim=16, num_heads=3, num_layers=3)
ALT_T2V_SEED = 11


def generate(outdir, only, do_f64):
    os.makedirs(outdir, exist_ok=True)
    jobs = {
        "alt_dit_t2v": lambda: gen_dit(outdir, "alt_dit_t2v", ALT_T2V, False, (2, 6, 10), [723.0], 5,
                                       30, ALT_T2V_SEED, do_f64),
        "alt_dit_ti2v": lambda: gen_dit(
            outdir, "alt_dit_ti2v",
            dit_cfg("ti2v", text_len=10, in_dim=48, dim=64, ffn_dim=128, freq_dim=256, text_dim=32,
                    out_dim=48, num_heads=1, num_layers=1),
            True, (3, 4, 6), [[0.0] * 6 + [377.0] * 12], 6, 18, 12, do_f64),
        "alt_dit_i2v": lambda: gen_dit(
            outdir, "alt_dit_i2v",
            dit_cfg("i2v", text_len=8, in_dim=36, dim=64, ffn_dim=128, freq_dim=128, text_dim=32,
                    out_dim=16, num_heads=2, num_layers=2),
            True, (2, 4, 4), [611.0], 4, 10, 13, do_f64, y_ch=20),
        "alt_wan21_vae": lambda: gen_vae(
            outdir, "alt_wan21_vae",
            {"dim": 4, "z_dim": 4, "dim_mult": [1, 2, 2, 4], "num_res_blocks": 1, "attn_scales": [],
             "temperal_downsample": [False, True, True], "dropout": 0.0},
            False, (5, 24, 40), 21, do_f64),
        "alt_wan22_vae": lambda: gen_vae(
            outdir, "alt_wan22_vae",
            {"dim": 8, "dec_dim": 12, "z_dim": 6, "dim_mult": [1, 2, 2, 2], "num_res_blocks": 1,
             "attn_scales": [], "temperal_downsample": [False, True, True], "dropout": 0.0},
            True, (5, 32, 48), 22, do_f64),
        "alt_flow_schedule": lambda: gen_flow(
            outdir, "alt_flow_schedule", ALT_T2V, ALT_T2V_SEED, [(12, 2.5), (7, 7.0)], 5, 3.0, 3.5,
            (2, 6, 10), 5, 3, 31, do_f64),
    }
    names = list(jobs) if not only else only
    for n in names:
        p = jobs[n]()
        print("%-40s %9d bytes" % (p, os.path.getsize(p)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", metavar="DIR", help="check the implementation against DIR/*.safetensors")
    ap.add_argument("--files", help="comma-separated base names for --verify (default: the 5 Wan files)")
    ap.add_argument("--out", metavar="DIR", help="write the alternate-configuration golden files")
    ap.add_argument("--only", help="comma-separated subset of the files for --out")
    ap.add_argument("--no-f64", action="store_true", help="skip the float64 re-run (f32_vs_f64 metadata)")
    a = ap.parse_args()
    if not a.verify and not a.out:
        ap.error("give --verify DIR and/or --out DIR")
    rc = 0
    if a.verify:
        ok, _ = verify(a.verify, a.files.split(",") if a.files else None)
        rc |= 0 if ok else 1
    if a.out:
        generate(a.out, a.only.split(",") if a.only else None, not a.no_f64)
    return rc


if __name__ == "__main__":
    sys.exit(main())
