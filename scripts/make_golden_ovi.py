#!/usr/bin/env python3
"""make_golden_ovi.py - independent PyTorch (float32) model of Ovi's FusionModel
(character-ai/Ovi ovi/modules/fusion.py + ovi/modules/model.py), and a writer
of alternate-configuration golden files in the shipped ovi_fusion format.

It reuses the Wan pieces of scripts/make_golden.py (safetensors reader/writer,
sinusoidal embedding, 3-D RoPE table and rotation, masked attention, weight
maker). What is Ovi-specific and written here:
  * video tower = Wan2.2 ti2v blocks (per-token timesteps) with Ovi's naming
    (blocks.i.modulation.modulation) and the fusion tensors in cross_attn
    (k_fusion, v_fusion, pre_attn_norm_fusion, norm_k_fusion);
  * audio tower = t2a WanModel: channel-last Conv1d(k7) -> SiLU -> ConvMLP
    w2(silu(w1 x) * w3 x) patch embedding, 1-D RoPE on the frame band only,
    positions scaled by temporal_rope_scaling_factor;
  * fused block order: audio SA, video SA, audio cross-attn+FFN attending to
    the video tokens after SA, video cross-attn+FFN attending to the audio
    tokens after SA (before the audio cross-attn);
  * cross-attn = o(attn(q, k_txt, v_txt) + attn(rope_src(q), rope_tgt(k_t), v_t));
  * slg_layer > 0 skips that whole fused block pair.

  /usr/bin/python3 scripts/make_golden_ovi.py --verify /work/shared/golden
  /usr/bin/python3 scripts/make_golden_ovi.py --out tests/golden [--no-f64]

--verify exits 1 when any out.*/mid.* tensor is further than 2e-5 (the
README-audio.md suggestion for out.* and mid.*.block.*) from the file.
"""
import argparse
import hashlib
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_golden import (attend, make_weights, rope_rotate, rope_table, sinusoid,  # noqa: E402
                         st_read, st_write, to_np)

torch.set_num_threads(1)  # bit-for-bit reproducible files

TOL = 2e-5
GENERATOR = ("scripts/make_golden_ovi.py (independent PyTorch reimplementation reusing "
             "scripts/make_golden.py, validated against the shipped ovi_fusion*.safetensors "
             "with --verify), torch %s CPU float32, 1 thread" % torch.__version__)


# ----------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------
def convmlp_hidden(dim):
    h = int(2 * (4 * dim) / 3)
    return 256 * ((h + 255) // 256)


def audio_rope_table(head_dim, scale, max_pos=1024):
    """complex128 [max_pos, rd/2]: rope_params(1024, rd, freqs_scaling=scale)."""
    rd = head_dim - 4 * (head_dim // 6)
    inv = scale * (1.0 / torch.pow(10000.0, torch.arange(0, rd, 2, dtype=torch.float64) / rd))
    ang = torch.arange(max_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.polar(torch.ones_like(ang), ang)


def audio_rope_rotate(x, n_tok, table):
    """x [S, n, d]; the first n_tok rows rotate their first table.shape[1] pairs."""
    S, n, d = x.shape
    rp = table.shape[1]
    xs = x if n_tok == S else x[:n_tok]
    z = torch.view_as_complex(xs[:, :, :2 * rp].to(torch.float64).reshape(n_tok, n, rp, 2).contiguous())
    rot = torch.view_as_real(z * table[:n_tok][:, None, :]).reshape(n_tok, n, 2 * rp).to(x.dtype)
    head = torch.cat([rot, xs[:, :, 2 * rp:]], dim=-1)
    return head if n_tok == S else torch.cat([head, x[n_tok:]], dim=0)


class Tower:
    """One WanModel of the fusion: embeddings, per-block halves, head. Tokens
    are held as [S, B, dim] for a batch of B samples: the attention treats
    the batch as more heads ([S, B * heads, head_dim]), so every position,
    rope and mask is the single-sample one (B = 1 is the reference forward)."""

    def __init__(self, W, prefix, cfg, name):
        self.W = {k[len(prefix):]: v for k, v in W.items() if k.startswith(prefix)}
        self.cfg, self.name = cfg, name
        self.dim, self.nh = cfg["dim"], cfg["num_heads"]
        self.hd = self.dim // self.nh
        self.eps = cfg["eps"]

    def lin(self, v, name, bias=True):
        return F.linear(v, self.W[name + ".weight"], self.W[name + ".bias"] if bias else None)

    def rms(self, v, name):
        if not self.cfg.get("qk_norm", True):
            return v
        return v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + self.eps) * self.W[name + ".weight"]

    def ln(self, v, name=None):
        if name is None:
            return F.layer_norm(v, (self.dim,), None, None, self.eps)
        return F.layer_norm(v, (self.dim,), self.W[name + ".weight"], self.W[name + ".bias"], self.eps)

    def rope(self, x):
        if self.name == "vid":
            return rope_rotate(x, self.grid, self.table)
        return audio_rope_rotate(x, self.N, self.table)

    def heads(self, v):
        """[S, B, dim] -> [S, B * heads, head_dim]"""
        return v.reshape(v.shape[0], -1, self.hd)

    def embed(self, x, t, contexts, seq_len, rec, dt):
        """x: video [B, C, F, H, W] / audio [B, L, C]; t [B]; contexts: B tensors [Lc, text_dim]."""
        cfg, dim = self.cfg, self.dim
        B = x.shape[0]
        if self.name == "vid":
            tok = F.conv3d(x.to(dt), self.W["patch_embedding.weight"],
                           self.W["patch_embedding.bias"], stride=tuple(cfg["patch_size"]))
            self.grid = tuple(tok.shape[2:])
            tok = tok.flatten(2).permute(2, 0, 1)                          # [N, B, dim]
            self.table = rope_table(self.hd)
        else:
            a = x.to(dt).transpose(1, 2)                                # [B, C, L]
            h = F.silu(F.conv1d(a, self.W["patch_embedding.0.weight"],
                                self.W["patch_embedding.0.bias"], padding=3))
            h = F.conv1d(F.silu(F.conv1d(h, self.W["patch_embedding.2.w1.weight"], padding=3))
                         * F.conv1d(h, self.W["patch_embedding.2.w3.weight"], padding=3),
                         self.W["patch_embedding.2.w2.weight"], padding=3)
            tok = h.permute(2, 0, 1)                                    # [L, B, dim]
            self.table = audio_rope_table(self.hd, cfg["temporal_rope_scaling_factor"])
        self.N = tok.shape[0]
        assert self.N <= seq_len
        self.S = seq_len
        self.h = torch.cat([tok, tok.new_zeros(seq_len - self.N, B, dim)], dim=0)
        rec["patch_embed"] = self.h.transpose(0, 1)
        rec["rope_freqs"] = torch.view_as_real(self.table)

        tt = t.reshape(B, 1).expand(B, seq_len).to(torch.float32)
        rec["t_tokens"] = tt
        sin = sinusoid(cfg["freq_dim"], tt.reshape(-1)).reshape(B, seq_len, -1)
        rec["t_sinusoid"] = sin
        e = self.lin(F.silu(self.lin(sin.to(dt), "time_embedding.0")), "time_embedding.2")
        e0 = self.lin(F.silu(e), "time_projection.1").reshape(B, seq_len, 6, dim)
        rec["e"] = e
        rec["e0"] = e0
        self.e, self.e0 = e.transpose(0, 1), e0.transpose(0, 1)       # [S, B, ...]
        L = cfg["text_len"]
        ctx = torch.stack([torch.cat([c.to(dt), c.new_zeros(L - c.shape[0], c.shape[1]).to(dt)], dim=0)
                           for c in contexts])                          # [B, text_len, text_dim]
        ctx = self.lin(F.gelu(self.lin(ctx, "text_embedding.0"), approximate="tanh"),
                       "text_embedding.2")
        rec["context"] = ctx
        self.ctx = ctx.transpose(0, 1)                                  # [text_len, B, dim]

    def self_attn(self, i, rec):
        p = "blocks.%d." % i
        m = self.W[p + "modulation.modulation"][0][None, None] + self.e0    # [S, B, 6, dim]
        # unbind, not six slices: the same views, but training's backward then
        # stacks the six gradients instead of zero-filling an [S, B, 6, dim] buffer each
        self.mod = list(m.unbind(2))
        S = self.S
        u = self.ln(self.h) * (1 + self.mod[1]) + self.mod[0]
        q = self.heads(self.rms(self.lin(u, p + "self_attn.q"), p + "self_attn.norm_q"))
        k = self.heads(self.rms(self.lin(u, p + "self_attn.k"), p + "self_attn.norm_k"))
        v = self.heads(self.lin(u, p + "self_attn.v"))
        a = attend(self.rope(q), self.rope(k), v, k_len=self.N).reshape(S, -1, self.dim)
        self.h = self.h + self.lin(a, p + "self_attn.o") * self.mod[2]
        rec["block.%d.after_self_attn" % i] = self.h.transpose(0, 1)

    def cross_ffn(self, i, tgt_h, tgt, rec):
        """tgt_h: the other tower's tokens [S_t, B, dim]; tgt: that Tower (rope, N)."""
        p = "blocks.%d." % i
        c = p + "cross_attn."
        S = self.S
        u = self.ln(self.h, p + "norm3") if self.cfg.get("cross_attn_norm", True) else self.h
        q = self.heads(self.rms(self.lin(u, c + "q"), c + "norm_q"))
        k = self.heads(self.rms(self.lin(self.ctx, c + "k"), c + "norm_k"))
        v = self.heads(self.lin(self.ctx, c + "v"))
        x_txt = attend(q, k, v)
        tn = self.ln(tgt_h, c + "pre_attn_norm_fusion")
        kt = self.heads(self.rms(self.lin(tn, c + "k_fusion"), c + "norm_k_fusion"))
        vt = self.heads(self.lin(tn, c + "v_fusion"))
        x_av = attend(self.rope(q), tgt.rope(kt), vt, k_len=tgt.N)
        y = self.lin((x_txt + x_av).reshape(S, -1, self.dim), c + "o")
        rec["block.%d.cross_attn_out" % i] = y.transpose(0, 1)
        self.h = self.h + y
        u = self.ln(self.h) * (1 + self.mod[4]) + self.mod[3]
        u = self.lin(F.gelu(self.lin(u, p + "ffn.0"), approximate="tanh"), p + "ffn.2")
        self.h = self.h + u * self.mod[5]
        rec["block.%d" % i] = self.h.transpose(0, 1)

    def head(self, rec):
        hm = self.W["head.modulation"][0][None, None] + self.e[:, :, None, :]   # [S, B, 2, dim]
        out = self.lin(self.ln(self.h) * (1 + hm[:, :, 1]) + hm[:, :, 0], "head.head")
        rec["head"] = out.transpose(0, 1)
        if self.name != "vid":
            return out[:self.N].transpose(0, 1)                          # [B, N, C]
        c = self.cfg["out_dim"]
        f, gh, gw = self.grid
        pt, ph, pw = self.cfg["patch_size"]
        B = out.shape[1]
        u = out[:self.N].reshape(f, gh, gw, B, pt, ph, pw, c).permute(3, 7, 0, 4, 1, 5, 2, 6)
        return u.reshape(B, c, f * pt, gh * ph, gw * pw)


def fusion_run_batch(W, cfg, vid, t, vid_ctxs, vid_seq_len, audio, audio_ctxs, audio_seq_len,
                     slg=0, dtype=torch.float32, rv=None, ra=None):
    """The FusionModel forward of a batch (differentiable: training uses it):
    vid [B, C, F, H, W], t [B], audio [B, L, C], *_ctxs B tensors [Lc, text_dim]
    -> (video [B, C, F, H, W], audio [B, L, C]). Every sample of a batch has
    the same shapes; the text contexts may differ in length."""
    vt = Tower(W, "video_model.", cfg["video"], "vid")
    at = Tower(W, "audio_model.", cfg["audio"], "audio")
    rv = {} if rv is None else rv
    ra = {} if ra is None else ra
    vt.embed(vid, t, vid_ctxs, vid_seq_len, rv, dtype)
    at.embed(audio, t, audio_ctxs, audio_seq_len, ra, dtype)
    for i in range(cfg["video"]["num_layers"]):
        if slg > 0 and i == slg:
            continue
        at.self_attn(i, ra)
        vt.self_attn(i, rv)
        a_sa = at.h
        at.cross_ffn(i, vt.h, vt, ra)
        vt.cross_ffn(i, a_sa, at, rv)
    return vt.head(rv), at.head(ra)


def fusion_run(W, cfg, vid, t, vid_ctx, vid_seq_len, audio, audio_ctx, audio_seq_len, slg=0,
               dtype=torch.float32, rv=None, ra=None):
    """One sample: vid [C, F, H, W], t scalar, audio [L, C] -> (video [C, F, H, W],
    audio [L, C]); the intermediates in rv / ra carry a batch axis of 1."""
    v, a = fusion_run_batch(W, cfg, vid[None], t.reshape(1), [vid_ctx], vid_seq_len, audio[None],
                            [audio_ctx], audio_seq_len, slg, dtype, rv, ra)
    return v[0], a[0]


def fusion_forward(W, cfg, T, dtype):
    """W: state dict (weights.* stripped); T: the in.* tensors. Returns mid./out. dict."""
    W = {k: v.to(dtype) for k, v in W.items()}
    rv, ra = {}, {}
    t = torch.from_numpy(np.array(T["in.t"]))
    slg = int(T["in.slg_layer"][0]) if "in.slg_layer" in T else 0
    res = {}
    res["out.vid"], res["out.audio"] = fusion_run(
        W, cfg, torch.from_numpy(np.array(T["in.vid"])), t,
        torch.from_numpy(np.array(T["in.vid_context"])), int(T["in.vid_seq_len"][0]),
        torch.from_numpy(np.array(T["in.audio"])), torch.from_numpy(np.array(T["in.audio_context"])),
        int(T["in.audio_seq_len"][0]), slg, dtype, rv, ra)
    for pre, r in (("mid.vid.", rv), ("mid.audio.", ra)):
        for k, v in r.items():
            res[pre + k] = v
    return res


# ----------------------------------------------------------------------------
# --verify
# ----------------------------------------------------------------------------
def load_case(path):
    T, meta = st_read(path)
    if meta.get("weights_from"):
        W, _ = st_read(os.path.join(os.path.dirname(path), meta["weights_from"]))
        T = dict(T)
        T.update({k: v for k, v in W.items() if k.startswith("weights.")})
    return T, meta


def run_case(T, meta, dtype):
    W = {k[len("weights."):]: torch.from_numpy(np.array(v)) for k, v in T.items()
         if k.startswith("weights.")}
    with torch.no_grad():
        return fusion_forward(W, json.loads(meta["config"]), T, dtype)


def verify(directory, files):
    ok_all = True
    for base in files:
        path = os.path.join(directory, base + ".safetensors")
        if not os.path.exists(path):
            print("MISSING %s" % path)
            ok_all = False
            continue
        T, meta = load_case(path)
        res = run_case(T, meta, torch.float32)
        print("== %s" % base)
        worst_mid = 0.0
        for name in T:
            if not (name.startswith("out.") or name.startswith("mid.")):
                continue
            if name not in res:
                print("  %-40s NOT COMPUTED" % name)
                ok_all = False
                continue
            mine, ref = to_np(res[name]), T[name]
            if mine.shape != ref.shape:
                print("  %-40s SHAPE %s vs %s" % (name, mine.shape, ref.shape))
                ok_all = False
                continue
            err = float(np.max(np.abs(mine.astype(np.float64) - ref.astype(np.float64))))
            good = err <= TOL
            ok_all &= good
            if name.startswith("mid.") and ".block." in name:
                worst_mid = max(worst_mid, err)
            print("  %-40s max_abs %.3e  max|ref| %.3g  tol %.0e  %s"
                  % (name, err, float(np.max(np.abs(ref))), TOL, "ok" if good else "FAIL"))
        extra = [n for n in res if n not in T]
        if extra:
            print("  (computed but absent from the file: %s)" % ", ".join(sorted(extra)))
        print("  worst mid.*.block.* %.3e" % worst_mid)
    print("VERIFY %s" % ("PASSED" if ok_all else "FAILED"))
    return ok_all


# ----------------------------------------------------------------------------
# --out
# ----------------------------------------------------------------------------
def ovi_param_specs(cfg, audio):
    """(name, shape, init) in the reference state_dict() order of one tower."""
    dim, ffn, fd, td = cfg["dim"], cfg["ffn_dim"], cfg["freq_dim"], cfg["text_dim"]
    s = []

    def lin(name, fin, fout, w="xavier"):
        s.append((name + ".weight", [fout, fin], w))
        s.append((name + ".bias", [fout], "zeros"))

    if audio:
        hid = convmlp_hidden(dim)
        s.append(("patch_embedding.0.weight", [dim, cfg["in_dim"], 7], "xavier"))
        s.append(("patch_embedding.0.bias", [dim], ("uniform", 1.0 / math.sqrt(cfg["in_dim"] * 7))))
        s.append(("patch_embedding.2.w1.weight", [hid, dim, 7], "xavier"))
        s.append(("patch_embedding.2.w2.weight", [dim, hid, 7], "xavier"))
        s.append(("patch_embedding.2.w3.weight", [hid, dim, 7], "xavier"))
        pp = 1
    else:
        patch = cfg["patch_size"]
        pp = patch[0] * patch[1] * patch[2]
        s.append(("patch_embedding.weight", [dim, cfg["in_dim"]] + list(patch), "xavier"))
        s.append(("patch_embedding.bias", [dim], ("uniform", 1.0 / math.sqrt(cfg["in_dim"] * pp))))
    lin("text_embedding.0", td, dim, "normal02")
    lin("text_embedding.2", dim, dim, "normal02")
    lin("time_embedding.0", fd, dim, "normal02")
    lin("time_embedding.2", dim, dim, "normal02")
    lin("time_projection.1", dim, 6 * dim)
    for i in range(cfg["num_layers"]):
        p = "blocks.%d." % i
        for a in ("self_attn", "cross_attn"):
            if a == "cross_attn":
                s.append((p + "norm3.weight", [dim], "ones"))
                s.append((p + "norm3.bias", [dim], "zeros"))
            for n in "qkvo":
                lin(p + a + "." + n, dim, dim)
            s.append((p + a + ".norm_q.weight", [dim], "ones"))
            s.append((p + a + ".norm_k.weight", [dim], "ones"))
            if a == "cross_attn":
                lin(p + a + ".k_fusion", dim, dim)
                lin(p + a + ".v_fusion", dim, dim)
                s.append((p + a + ".pre_attn_norm_fusion.weight", [dim], "ones"))
                s.append((p + a + ".pre_attn_norm_fusion.bias", [dim], "zeros"))
                s.append((p + a + ".norm_k_fusion.weight", [dim], "ones"))
        lin(p + "ffn.0", dim, ffn)
        lin(p + "ffn.2", ffn, dim)
        s.append((p + "modulation.modulation", [1, 6, dim], "modulation"))
    s.append(("head.modulation", [1, 2, dim], "modulation"))
    lin("head.head", dim, pp * cfg["out_dim"], "zeros")
    return s


def tower_cfg(model_type, **kw):
    c = {"cross_attn_norm": True, "eps": 1e-06, "model_type": model_type, "qk_norm": True,
         "window_size": [-1, -1]}
    c.update(kw)
    return c


ALT_DIM, ALT_HEADS, ALT_LAYERS = 32, 1, 3
ALT_SHARED = dict(dim=ALT_DIM, ffn_dim=64, freq_dim=64, num_heads=ALT_HEADS,
                  num_layers=ALT_LAYERS, text_dim=24, text_len=32)
ALT_VIDEO = tower_cfg("ti2v", in_dim=12, out_dim=12, patch_size=[1, 2, 2], **ALT_SHARED)
ALT_AUDIO = tower_cfg("t2a", in_dim=20, out_dim=20, patch_size=[1],
                      temporal_rope_scaling_factor=0.19676, **ALT_SHARED)
ALT_VID_SHAPE = (12, 2, 6, 4)       # C, F, H, W -> 2*3*2 = 12 tokens
ALT_AUDIO_LEN = 23
ALT_CTX = (5, 9)                    # video / audio context rows
ALT_T = 431.0
ALT_SEED = 71
ALT_SLG = 1


def weights_sha256(items):
    """sha256 over (name, little-endian F32 bytes) of the weights.* tensors in file order."""
    h = hashlib.sha256()
    for name, a in items:
        h.update(name.encode("utf-8") + b"\0")
        h.update(np.ascontiguousarray(a).astype("<f4").tobytes())
    return h.hexdigest()


def f64_report(res32, res64):
    per = {}
    for name in ("out.audio", "out.vid"):
        a = res32[name].detach().to(torch.float64)
        b = res64[name].detach().to(torch.float64)
        d = float((a - b).abs().max())
        mx = float(b.abs().max())
        per[name] = {"max_abs": float("%.4g" % d), "max_abs_ref": float("%.4g" % mx),
                     "rel_to_max": float("%.4g" % (d / mx if mx else 0.0))}
    worst = max(per, key=lambda k: per[k]["max_abs"])
    return json.dumps({"max_abs": per[worst]["max_abs"], "max_ref": per[worst]["max_abs_ref"],
                       "note": "float64 re-run of scripts/make_golden_ovi.py's own implementation "
                               "(same weights/inputs upcast), not of the reference code",
                       "per_output": per, "rel_to_max": per[worst]["rel_to_max"],
                       "worst_output": worst}, sort_keys=True)


def not_measured():
    return json.dumps({"max_abs": None, "note": "not measured (generated with --no-f64)"})


def generate(outdir, do_f64, shipped_dir):
    os.makedirs(outdir, exist_ok=True)
    # the reference string, torch_patches and weight_norm_removed notes are the shipped file's
    shipped = os.path.join(shipped_dir, "ovi_fusion.safetensors")
    _, smeta = st_read(shipped)

    rng = np.random.default_rng(ALT_SEED + 1000)
    wv = make_weights(ovi_param_specs(ALT_VIDEO, False), ALT_SEED)
    wa = make_weights(ovi_param_specs(ALT_AUDIO, True), ALT_SEED + 1)
    weights = [("weights.video_model." + k[len("weights."):], v) for k, v in wv] + \
              [("weights.audio_model." + k[len("weights."):], v) for k, v in wa]
    C, Fr, H, Wd = ALT_VID_SHAPE
    nv = Fr * (H // 2) * (Wd // 2)
    ctx_v = rng.standard_normal((ALT_CTX[0], ALT_SHARED["text_dim"])).astype(np.float32)
    ctx_a = rng.standard_normal((ALT_CTX[1], ALT_SHARED["text_dim"])).astype(np.float32)
    ins = [("in.vid", rng.standard_normal(ALT_VID_SHAPE).astype(np.float32)),
           ("in.audio", rng.standard_normal((ALT_AUDIO_LEN, ALT_AUDIO["in_dim"])).astype(np.float32)),
           ("in.vid_context", ctx_v), ("in.audio_context", ctx_a),
           ("in.t", np.asarray([ALT_T], np.float32)),
           ("in.vid_seq_len", np.asarray([nv], np.int64)),
           ("in.audio_seq_len", np.asarray([ALT_AUDIO_LEN], np.int64))]
    sha = weights_sha256(weights)
    out = []
    for name, slg in (("alt_ovi_fusion", 0), ("alt_ovi_fusion_slg", ALT_SLG)):
        items = list(ins)
        if slg:
            items.append(("in.slg_layer", np.asarray([slg], np.int64)))
        executed = [i for i in range(ALT_LAYERS) if not (slg > 0 and i == slg)]
        cfg = {"audio": ALT_AUDIO, "audio_seq_len": ALT_AUDIO_LEN, "blocks_executed": executed,
               "fusion_block_count": ALT_LAYERS, "slg_layer": slg if slg else False,
               "vid_seq_len": nv, "video": ALT_VIDEO}
        meta = {"config": json.dumps(cfg, sort_keys=True)}
        T = dict(weights + items)
        res = run_case(T, meta, torch.float32)
        f64 = f64_report(res, run_case(T, meta, torch.float64)) if do_f64 else not_measured()
        desc = ("Ovi FusionModel (ovi/modules/fusion.py) = video WanModel (ti2v, patch 1x2x2) + "
                "audio WanModel (t2a), %d fused blocks, dim %d, %d head(s). One forward at t=%g: "
                "vid=[in.vid %s] (C,F,H,W), audio=[in.audio [%d,%d]] (L,C: channel-last), "
                "vid_context=[in.vid_context [%d,%d]], audio_context=[in.audio_context [%d,%d]] "
                "(different lengths; zero-padded to text_len=%d inside, context_lens=None so all "
                "%d keys are attended), t=in.t [1] expanded per token (mid.*.t_tokens). "
                "out.vid [%d,F,H,W], out.audio [L,%d]. mid.*.block.i = tokens [1,L,dim] after "
                "fused block i. Alternate configuration with random weights made by "
                "scripts/make_golden_ovi.py (an independent reimplementation, not the reference "
                "code; float32, no bf16 casts)."
                % (ALT_LAYERS, ALT_DIM, ALT_HEADS, ALT_T, list(ALT_VID_SHAPE), ALT_AUDIO_LEN,
                   ALT_AUDIO["in_dim"], ALT_CTX[0], ALT_SHARED["text_dim"], ALT_CTX[1],
                   ALT_SHARED["text_dim"], ALT_SHARED["text_len"], ALT_SHARED["text_len"],
                   ALT_VIDEO["out_dim"], ALT_AUDIO["out_dim"]))
        if slg:
            desc += (" SKIP-LAYER GUIDANCE pass: slg_layer=%d; FusionModel.forward skips the WHOLE "
                     "fused block %d (video block, audio block and their cross-modal attention). "
                     "This file holds NO weights.* tensors: load them from alt_ovi_fusion."
                     "safetensors (weights_from; same weights_sha256)." % (slg, slg))
        meta.update({
            "description": desc,
            "dtype": smeta["dtype"],
            "generator": GENERATOR,
            "torch_patches": json.dumps([]),
            "reference": smeta["reference"],
            "weight_norm_removed": smeta["weight_norm_removed"],
            "weights_sha256": sha,
            "f32_vs_f64": f64,
        })
        if slg:
            meta["weights_from"] = "alt_ovi_fusion.safetensors"
        mids = sorted(k for k in res if k.startswith("mid."))
        items = ([] if slg else weights) + items
        items += [(k, to_np(res[k])) for k in mids]
        items += [("out.vid", to_np(res["out.vid"])), ("out.audio", to_np(res["out.audio"]))]
        path = os.path.join(outdir, name + ".safetensors")
        st_write(path, items, meta)
        print("%-44s %9d bytes" % (path, os.path.getsize(path)))
        out.append(path)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--verify", metavar="DIR", help="check against DIR/ovi_fusion*.safetensors")
    ap.add_argument("--out", metavar="DIR", help="write alt_ovi_fusion*.safetensors")
    ap.add_argument("--shipped", metavar="DIR", default=None,
                    help="where ovi_fusion.safetensors is (for the reference metadata); "
                         "default: --verify DIR, else $REEL_GOLDEN_DIR or ../shared/golden")
    ap.add_argument("--no-f64", action="store_true", help="skip the float64 re-run (f32_vs_f64)")
    a = ap.parse_args()
    if not a.verify and not a.out:
        ap.error("give --verify DIR and/or --out DIR")
    rc = 0
    if a.verify:
        rc |= 0 if verify(a.verify, ["ovi_fusion", "ovi_fusion_slg"]) else 1
    if a.out:
        shipped = a.shipped or a.verify or os.environ.get("REEL_GOLDEN_DIR") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "golden")
        generate(a.out, not a.no_f64, shipped)
    return rc


if __name__ == "__main__":
    sys.exit(main())
