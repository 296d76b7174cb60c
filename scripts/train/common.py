"""common.py - scaffolding shared by the training stages of reel's default model.

  * seeds / threads:         setup_torch(threads), step_generator(seed, step)
  * config:                  load_model_config(path) -> dict (PyYAML), vae_cfg(...)
  * data:                    ClipLoader: deterministic batches of random space/time
                             crops from synth shards (scripts/synth/make_dataset.py)
  * checkpoints:             Checkpointer: atomic save/resume of params + optimizer +
                             step + RNG states, every N steps and on SIGTERM/SIGINT
  * safetensors:             st_save(path, {name: tensor}, meta, dtype), st_load(path)
                             F32/F16/BF16 (+I64/I32), names kept exactly as given
  * JSON log:                JsonLog: one JSON object per line, truncated on resume

Determinism: every random draw of step s (crops, clip choice, noise) comes from
generators seeded by (seed, s) alone, so a run resumed at step s produces the
same parameters as an uninterrupted one (bit-identical on 1 thread).
"""
import ctypes
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections import OrderedDict

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.dirname(HERE)
REPO = os.path.dirname(SCRIPTS)
for p in (SCRIPTS, os.path.join(SCRIPTS, "synth")):
    if p not in sys.path:
        sys.path.insert(0, p)


# the reference tensors beside the checkout, and the reel binary the tests run
GOLDEN = os.environ.get("REEL_GOLDEN_DIR") or os.path.join(os.path.dirname(REPO), "shared", "golden")
REEL_BIN = os.environ.get("REEL_BIN", os.path.join(REPO, "build", "reel"))


# ----------------------------------------------------------------------------
# seeds
# ----------------------------------------------------------------------------
def set_blas_threads(n):
    """Threads of the OpenBLAS that Debian's torch calls for f32 matmuls.
    Its pthread build starts one thread per core beside torch's own OpenMP
    threads; with torch on 2 threads as well the 2-core machine runs 4 and the
    DiT step takes 3x longer (measured: 0.70 s/sample vs 0.27). Returns
    whether a loaded OpenBLAS took the setting."""
    done = False
    with open("/proc/self/maps") as f:
        libs = sorted({l.split()[-1] for l in f if "openblas" in l and ".so" in l})
    for path in libs:
        try:
            fn = getattr(ctypes.CDLL(path), "openblas_set_num_threads", None)
        except OSError:
            continue
        if fn is not None:
            fn(int(n))
            done = True
    return done


def keep_freed_memory():
    """glibc returns a big freed block to the kernel at once (mmap above the
    threshold, heap trimmed above 128 KiB at the top), so every training step
    faults its activations in again, page by page. Allocations up to 32 MiB
    (glibc's ceiling) stay in the heap, and the heap keeps what it freed
    (scripts/train/time_dit_step.py measures a DiT sample with and without)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3
    ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    ok &= libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
    ok &= libc.mallopt(M_TOP_PAD, 256 << 20)
    return bool(ok)


def setup_torch(threads=None, seed=0, blas_threads=None, keep_memory=True):
    if keep_memory:
        keep_freed_memory()
    if threads:
        torch.set_num_threads(int(threads))
    if blas_threads:
        set_blas_threads(blas_threads)
    torch.manual_seed(seed)
    np.random.seed(seed % (2 ** 32))
    random.seed(seed)


def step_seed(seed, step, stream=0):
    """A 63-bit seed that depends only on (seed, step, stream)."""
    ss = np.random.SeedSequence([int(seed), int(step), int(stream)])
    return int(ss.generate_state(1, np.uint64)[0]) & ((1 << 63) - 1)


def step_generator(seed, step, stream=0):
    g = torch.Generator()
    g.manual_seed(step_seed(seed, step, stream))
    return g


def step_rng(seed, step, stream=0):
    return np.random.default_rng([int(seed), int(step), int(stream)])


# ----------------------------------------------------------------------------
# model config
# ----------------------------------------------------------------------------
def load_model_config(path):
    import yaml
    with open(path) as f:
        return yaml.safe_load(f)


def vae_cfg(model_cfg):
    """make_golden.WanVAE's cfg dict from a reel model config's vae section."""
    v = model_cfg["vae"]
    assert int(v["version"]) == 21, "only the Wan2.1 VAE is trained here"
    return {"dim": int(v["dim"]), "z_dim": int(v["z_dim"]), "dim_mult": list(v["dim_mult"]),
            "num_res_blocks": int(v["num_res_blocks"]), "attn_scales": list(v.get("attn_scales", [])),
            "temperal_downsample": [bool(b) for b in v.get("temporal_downsample", [False, True, True])],
            "dropout": 0.0}


VAE_TOOL = os.path.join(REPO, "build", "tests", "tool_vae_encode")


def c_vae(vcfg, weights, videos, threads=0, recon=False, tool=VAE_TOOL):
    """videos float32 [N, 3, T, H, W] in [-1, 1] through reel's own C Wan2.1 VAE
    (tests/tool_vae_encode; vcfg as vae_cfg gives it) -> (raw mu
    [N, z, T', H/8, W/8], and with recon the decoded clips [N, 3, T'', H, W]
    clamped to [-1, 1], else None). Raises RuntimeError with the tool's
    message when it fails."""
    import tempfile
    kw = {k: vcfg[k] for k in ("dim", "z_dim", "dim_mult", "num_res_blocks", "attn_scales",
                                "temperal_downsample")}
    with tempfile.TemporaryDirectory(prefix="reel-vae-") as tmp:
        src, dst = os.path.join(tmp, "in.safetensors"), os.path.join(tmp, "out.safetensors")
        st_save(src, {"video": torch.from_numpy(np.ascontiguousarray(videos, dtype=np.float32))})
        r = subprocess.run([tool] + (["--recon"] if recon else []) +
                           ["21", json.dumps(kw), weights, src, dst, str(threads)],
                           capture_output=True, text=True)
        if r.returncode:
            # the tool's own message names itself
            raise RuntimeError(r.stderr.strip() or "%s: exit %d" % (tool, r.returncode))
        T, _ = st_load(dst)
    return T["mu"].numpy(), (T["recon"].numpy() if recon else None)


# ----------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------
def ensure_dataset(out, n, seed, split, size=128, fps=16, seconds=3.0):
    """Make the synth dataset in `out` unless its index.json says it is there."""
    import make_dataset as md
    idx = os.path.join(out, "index.json")
    if os.path.exists(idx):
        with open(idx) as f:
            d = json.load(f)
        m = d.get("meta", {})
        if (d.get("n", 0) >= n and m.get("seed") == seed and m.get("split") == split
                and m.get("size") == size and m.get("version") == md.VERSION):
            return out
        # another generator version or seed: remake it (its shards only)
        for f in os.listdir(out):
            if f.endswith(".npz") or f == "index.json":
                os.remove(os.path.join(out, f))
    md.make_dataset(out, n, seed=seed, split=split, size=size, fps=fps, seconds=seconds)
    return out


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for blk in iter(lambda: f.read(1 << 20), b""):
            h.update(blk)
    return h.hexdigest()


def list_shards(d):
    names = sorted(f for f in os.listdir(d) if f.endswith(".npz"))
    if not names:
        raise FileNotFoundError("no .npz shards in %s" % d)
    return [os.path.join(d, f) for f in names]


def object_pixels(u8, bg):
    """bool [..., H, W]: the pixels of u8 [..., H, W, 3] that differ from the
    flat background colour bg (broadcast to [..., 1, 1, 3]) by more than 2 in
    some channel - the object and its anti-aliased edge."""
    return np.abs(u8.astype(np.int16) - np.asarray(bg).astype(np.int16)).max(axis=-1) > 2


class ClipLoader:
    """Deterministic batches of random crops from the video of synth shards.

    batch(step) -> float32 [B, 3, T, H, W] in [-1, 1]; the crop of step s
    depends only on (seed, s). A batch takes its clips from one shard (picked
    at random), so only a few shards need to be decompressed at a time.
    crop may be a list of (h, w) sizes: each step picks one, and a smaller
    crop comes with a larger batch (batch x (largest / this)^2 crops), so
    every step costs about the same; clips longer than frame_budget frames
    come fewer to a batch in proportion (at least one).
    """

    def __init__(self, data_dir, seed, batch=1, crop=(64, 64), frames=(5, 9), hflip=True,
                 cache_shards=3, object_p=0.0, frame_budget=9, impact_p=0.0):
        self.paths = list_shards(data_dir)
        self.seed, self.batch = seed, batch
        self.crops = [tuple(c) for c in crop] if isinstance(crop[0], (tuple, list)) else [tuple(crop)]
        self.crop = self.crops[0]
        self.frames = tuple(frames)
        self.hflip = hflip
        # With probability object_p a crop is placed around the moving object
        # (the shards' ground-truth centre), not uniformly: a uniform 64x64 crop
        # of a 128x128 clip is mostly flat background, and the VAE then learns
        # the object slowly.
        self.object_p = float(object_p)
        self.frame_budget = frame_budget
        # With probability impact_p a clip of 5+ frames is placed so that one
        # of the clip's wall impacts falls inside a latent frame's group of
        # four, not on its edge (and an object crop is centred on the object
        # at that frame): the VAE must turn the object round within a latent
        # frame, and impacts are rare in uniformly drawn windows.
        self.impact_p = float(impact_p)
        self.cache, self.cache_n = OrderedDict(), cache_shards

    def shard(self, i):
        if i in self.cache:
            self.cache.move_to_end(i)
            return self.cache[i]
        with np.load(self.paths[i], allow_pickle=False) as z:
            v = (z["video"], z["centre"] if self.object_p > 0 else None, z["background_rgb"],
                 z["impact_frames"] if self.impact_p > 0 else None)
        self.cache[i] = v
        while len(self.cache) > self.cache_n:
            self.cache.popitem(last=False)
        return v

    def batch_at(self, step, with_mask=False):
        """-> x, or (x, fg) with with_mask: fg float32 [B, 1, T, H, W], 1 where a
        pixel differs from the clip's flat background (the object and its
        anti-aliased edge), 0 elsewhere."""
        rng = step_rng(self.seed, step, 1)
        v, centre, bgs, impacts = self.shard(int(rng.integers(len(self.paths))))
        n, T, H, W, _ = v.shape
        t = int(self.frames[int(rng.integers(len(self.frames)))])
        ch, cw = self.crop
        nb = self.batch
        if len(self.crops) > 1:
            ch, cw = self.crops[int(rng.integers(len(self.crops)))]
            big = max(h * w for h, w in self.crops)
            nb = max(1, int(round(self.batch * big / (ch * cw))))
        if t > self.frame_budget:
            nb = max(1, int(round(nb * self.frame_budget / t)))
        out = np.empty((nb, t, ch, cw, 3), np.uint8)
        fg = np.empty((nb, 1, t, ch, cw), np.float32) if with_mask else None
        for b in range(nb):
            k = int(rng.integers(n))
            t0 = int(rng.integers(T - t + 1))
            y0 = int(rng.integers(H - ch + 1))
            x0 = int(rng.integers(W - cw + 1))
            focus = t0 + t // 2
            if t >= 5 and self.impact_p > 0 and rng.random() < self.impact_p:
                hit = self.impact_window(impacts, T, t, rng)
                if hit is not None:
                    k, t0, focus = hit
            if self.object_p > 0 and rng.random() < self.object_p:
                cx, cy = centre[k, focus]
                x0 = int(np.clip(round(cx - cw / 2 + rng.uniform(-cw / 4, cw / 4)), 0, W - cw))
                y0 = int(np.clip(round(cy - ch / 2 + rng.uniform(-ch / 4, ch / 4)), 0, H - ch))
            c = v[k, t0:t0 + t, y0:y0 + ch, x0:x0 + cw]
            if self.hflip and rng.random() < 0.5:
                c = c[:, :, ::-1]
            out[b] = c
            if with_mask:
                fg[b, 0] = object_pixels(c, bgs[k])
        x = to_video_tensor(out)
        return (x, torch.from_numpy(fg)) if with_mask else x

    @staticmethod
    def impact_window(impacts, T, t, rng):
        """(clip, first frame, impact frame) of a t-frame window holding an
        impact at offset 1 + 4 g + 1 or + 2 (the middle of latent group g;
        offset 0 is the causal first frame), or None when no clip of the
        shard has one that fits."""
        ks, js = np.nonzero(impacts >= 0)
        cand = [(int(k), int(f)) for k, f in zip(ks, impacts[ks, js]) if f < T]
        if not cand:
            return None
        k, f = cand[int(rng.integers(len(cand)))]
        offs = [1 + 4 * g + r for g in range((t - 1) // 4) for r in (1, 2)]
        offs = [o for o in offs if 0 <= f - o <= T - t]
        if not offs:
            return None
        return k, f - offs[int(rng.integers(len(offs)))], f


def to_video_tensor(u8):
    """uint8 [B,T,H,W,3] -> float32 [B,3,T,H,W] in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(u8)).to(torch.float32)
    return (x / 127.5 - 1.0).permute(0, 4, 1, 2, 3).contiguous()


def load_clips(data_dir, n, frames, max_shards=None):
    """The first n clips of a dataset, first `frames` frames: uint8 [n,T,H,W,3]."""
    out = []
    for p in list_shards(data_dir)[:max_shards]:
        with np.load(p, allow_pickle=False) as z:
            out.append(z["video"][:, :frames])
        if sum(o.shape[0] for o in out) >= n:
            break
    return np.concatenate(out)[:n]


# ----------------------------------------------------------------------------
# safetensors (F32 / F16 / BF16 / I64 / I32)
# ----------------------------------------------------------------------------
_DT_TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
             "I64": torch.int64, "I32": torch.int32, "F64": torch.float64}
_TORCH_DT = {v: k for k, v in _DT_TORCH.items()}
_RAW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16,
        torch.int64: torch.int64, torch.int32: torch.int32, torch.float64: torch.int64}


def _raw_bytes(t):
    t = t.detach().contiguous().cpu()
    a = t.view(_RAW[t.dtype]).numpy()
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def st_save(path, tensors, meta=None, dtype=None):
    """tensors: {name: torch.Tensor} (insertion order kept); floating tensors are
    cast to `dtype` (torch dtype) when given. Written atomically (tmp + rename)."""
    hdr, blobs, off = {}, [], 0
    for name, t in tensors.items():
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        raw = _raw_bytes(t)
        hdr[name] = {"dtype": _TORCH_DT[t.dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    if meta:
        hdr["__metadata__"] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}
    h = json.dumps(hdr, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def st_load(path, dtype=None):
    """-> (OrderedDict name -> torch.Tensor, metadata dict)."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    hdr = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    meta = hdr.pop("__metadata__", {}) or {}
    base = 8 + n
    out = OrderedDict()
    for name, ent in hdr.items():
        b, e = ent["data_offsets"]
        tdt = _DT_TORCH[ent["dtype"]]
        raw = np.frombuffer(data, dtype=np.uint8, count=e - b, offset=base + b).copy()
        rt = _RAW[tdt]
        a = raw.view(np.dtype(torch.empty(0, dtype=rt).numpy().dtype).newbyteorder("<"))
        t = torch.from_numpy(a.astype(a.dtype.newbyteorder("="))).view(tdt).reshape(ent["shape"])
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[name] = t
    return out, meta


# ----------------------------------------------------------------------------
# checkpoints
# ----------------------------------------------------------------------------
# git hosts refuse files over 100 MB, and a checkpoint is committed so that
# the next sitting (a fresh machine) resumes it; a larger state is stored as
# byte slices of one torch.save stream
CKPT_PART_BYTES = 90 << 20


def _fsync_write(path, data):
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def checkpoint_files(d):
    """-> the newest checkpoint in run dir D: D/ckpt.pt or D/ckpt.d, or None.
    A save that switched format may leave both for a moment; the newer one
    wins."""
    whole, parts = os.path.join(d, "ckpt.pt"), os.path.join(d, "ckpt.d")
    index = os.path.join(parts, "index.json")
    have = []
    if os.path.exists(whole):
        have.append((os.path.getmtime(whole), whole))
    if os.path.exists(index):
        have.append((os.path.getmtime(index), parts))
    if not have:
        # a hard kill between the two renames of a split save
        prev = os.path.join(d, "ckpt.prev.d")
        return prev if os.path.exists(os.path.join(prev, "index.json")) else None
    return max(have)[1]


def load_checkpoint(path, map_location="cpu"):
    """Reads a checkpoint: a run dir (its ckpt.pt or ckpt.d), a ckpt.d dir of
    parts, or a torch file. Parts are checked against their index (count,
    sizes, sha256) so a truncated or mixed set is an error, not a bad resume."""
    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "index.json")):
        found = checkpoint_files(path)
        if found is None:
            raise FileNotFoundError("%s: no checkpoint (ckpt.pt or ckpt.d/)" % path)
        path = found
    if not os.path.isdir(path):
        return torch.load(path, map_location=map_location)
    with open(os.path.join(path, "index.json")) as f:
        index = json.load(f)
    chunks = []
    for part in index["parts"]:
        fp = os.path.join(path, part["name"])
        with open(fp, "rb") as f:
            data = f.read()
        if len(data) != part["bytes"] or hashlib.sha256(data).hexdigest() != part["sha256"]:
            raise ValueError("%s: size or sha256 differs from %s/index.json" % (fp, path))
        chunks.append(data)
    return torch.load(io.BytesIO(b"".join(chunks)), map_location=map_location)


class Checkpointer:
    """Atomic checkpoints in DIR/ckpt.pt, or DIR/ckpt.d/part-NNN + index.json
    when the state is over `part_bytes` (the previous one kept as ckpt.prev.pt
    or ckpt.prev.d).

    state = {"step", "params": {name: tensor}, "opt": optimizer.state_dict(),
             "rng": {...}, "extra": {...}}. install_signal_handlers() turns SIGTERM
    and SIGINT into a flag the loop polls (`stop_requested`); the loop then saves
    and exits, so a kill between steps loses nothing, and a hard kill loses at
    most `every` steps.
    """

    def __init__(self, out_dir, every=100, part_bytes=CKPT_PART_BYTES):
        self.dir, self.every, self.part_bytes = out_dir, int(every), int(part_bytes)
        self.path = os.path.join(out_dir, "ckpt.pt")
        self.parts_dir = os.path.join(out_dir, "ckpt.d")
        self.stop_requested = None

    def install_signal_handlers(self):
        def handler(signum, frame):
            self.stop_requested = signum
            sys.stderr.write("signal %d: saving a checkpoint after this step\n" % signum)
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def exists(self):
        return checkpoint_files(self.dir) is not None

    def due(self, step):
        return self.every > 0 and step % self.every == 0

    def _save_whole(self, data):
        tmp = self.path + ".tmp"
        _fsync_write(tmp, data)
        if os.path.exists(self.path):
            os.replace(self.path, os.path.join(self.dir, "ckpt.prev.pt"))
        os.replace(tmp, self.path)
        shutil.rmtree(self.parts_dir, ignore_errors=True)

    def _save_parts(self, data, step):
        tmp = self.parts_dir + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        parts = []
        for i, at in enumerate(range(0, len(data), self.part_bytes)):
            chunk = data[at:at + self.part_bytes]
            name = "part-%03d" % i
            _fsync_write(os.path.join(tmp, name), chunk)
            parts.append({"name": name, "bytes": len(chunk),
                          "sha256": hashlib.sha256(chunk).hexdigest()})
        _fsync_write(os.path.join(tmp, "index.json"),
                     (json.dumps({"step": int(step), "bytes": len(data), "parts": parts},
                                 indent=1) + "\n").encode())
        prev = os.path.join(self.dir, "ckpt.prev.d")
        if os.path.exists(self.parts_dir):
            shutil.rmtree(prev, ignore_errors=True)
            os.replace(self.parts_dir, prev)
        os.replace(tmp, self.parts_dir)
        if os.path.exists(self.path):
            os.remove(self.path)

    def save(self, step, params, opt, extra=None):
        state = {"step": int(step),
                 "params": OrderedDict((k, v.detach().clone()) for k, v in params.items()),
                 "opt": opt.state_dict(),
                 "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                         "python": random.getstate()},
                 "extra": extra or {}}
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
        if len(data) <= self.part_bytes:
            self._save_whole(data)
        else:
            self._save_parts(data, step)

    def load(self, params, opt):
        """Restores params (in place) and optimizer; -> (step, extra)."""
        state = load_checkpoint(self.dir)
        with torch.no_grad():
            for k, v in params.items():
                v.copy_(state["params"][k])
        opt.load_state_dict(state["opt"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        return state["step"], state.get("extra", {})


# ----------------------------------------------------------------------------
# JSON log
# ----------------------------------------------------------------------------
class JsonLog:
    """DIR/log.jsonl, one object per line; on resume the lines past the resumed
    step are dropped so the log always matches the checkpoint it continues."""

    def __init__(self, path, resume_step=None):
        self.path = path
        if resume_step is None:
            open(path, "w").close()
        else:
            keep = []
            if os.path.exists(path):
                with open(path) as f:
                    for line in f:
                        try:
                            r = json.loads(line)
                        except ValueError:
                            continue
                        if r.get("step", 0) <= resume_step:
                            keep.append(line if line.endswith("\n") else line + "\n")
            with open(path + ".tmp", "w") as f:
                f.writelines(keep)
            os.replace(path + ".tmp", path)

    def write(self, **rec):
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")

    def records(self):
        with open(self.path) as f:
            return [json.loads(l) for l in f if l.strip()]


def write_json_atomic(path, obj):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.t0


# ----------------------------------------------------------------------------
# smoke-test scaffolding (test_train*.py)
# ----------------------------------------------------------------------------
def run_test(fn, fails):
    """Runs test_NAME(): returns None or why it failed; prints ok/FAIL - NAME."""
    import traceback
    name = fn.__name__[5:]
    try:
        why = fn()
    except Exception as e:  # noqa: BLE001
        why = "%s: %s" % (type(e).__name__, e)
        traceback.print_exc(file=sys.stderr)
    if why:
        fails.append(name)
        print("FAIL - %s: %s" % (name, why), flush=True)
    else:
        print("ok - %s" % name, flush=True)


def random_default_model(d, run_init=True):
    """d/m.yaml: the default config with its weights in d/w; with run_init,
    `reel init-weights` fills d/w with seeded random weights (reel's own tensor
    table). -> the weights folder."""
    os.makedirs(os.path.join(d, "w"), exist_ok=True)
    with open(os.path.join(REPO, "configs", "reel-default.yaml")) as f:
        src = f.read()
    with open(os.path.join(d, "m.yaml"), "w") as f:
        f.write(re.sub(r"(?m)^weights_dir:.*$", "weights_dir: w", src))
    if run_init:
        r = subprocess.run([REEL_BIN, "init-weights", os.path.join(d, "m.yaml"), "--force"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode:
            raise RuntimeError("reel init-weights: " + r.stdout[-500:])
    return os.path.join(d, "w")


def tiny_synth_dirs(tmp):
    """8 training and 2 held-out synth clips under tmp/data (made once)."""
    tr = ensure_dataset(os.path.join(tmp, "data", "train"), 8, 1, "train")
    ho = ensure_dataset(os.path.join(tmp, "data", "heldout"), 2, 2, "heldout")
    return tr, ho


def add_data_args(ap):
    """The synth data options of the stages that train on clips (VAE, audio codec)."""
    ap.add_argument("--data", default=None, help="train shards (default OUT/../data/train; made if absent)")
    ap.add_argument("--heldout", default=None, help="held-out shards (default OUT/../data/heldout)")
    ap.add_argument("--n-train", type=int, default=256)
    ap.add_argument("--n-heldout", type=int, default=16)
    ap.add_argument("--data-seed", type=int, default=1)
    ap.add_argument("--heldout-seed", type=int, default=2)


def add_step_args(ap):
    """Gradient clipping, checkpoint and log cadence: every training loop's."""
    ap.add_argument("--clip-grad", type=float, default=1.0)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--log-every", type=int, default=10)


def add_run_args(ap, eval_n):
    """The options the VAE and audio-codec stages take alike."""
    add_step_args(ap)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="f16", choices=["bf16", "f16", "f32"])
    ap.add_argument("--eval-n", type=int, default=eval_n)
    ap.add_argument("--no-export", action="store_true")


def start_run(out, params, opt, resume, save_every):
    """The checkpoint/log start every training stage shares: a Checkpointer
    with the SIGTERM/SIGINT handlers, the resume (params and optimizer in
    place) -> (checkpointer, step, extra, log)."""
    ck = Checkpointer(out, save_every)
    ck.install_signal_handlers()
    step, extra = 0, {}
    if resume and ck.exists():
        step, extra = ck.load(params, opt)
        print("resumed at step %d from %s" % (step, checkpoint_files(out)), flush=True)
    return ck, step, extra, JsonLog(os.path.join(out, "log.jsonl"), step if resume else None)
