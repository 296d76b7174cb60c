#!/usr/bin/python3
"""Converts a PyTorch .pth/.pt state dict to .safetensors, for reel.

reel reads only safetensors; checkpoints such as Wan2.1_VAE.pth,
Wan2.2_VAE.pth, MMAudio's v1-16.pth or BigVGAN's best_netG.pt are torch
pickles. This loads one (weights_only where torch supports it), unwraps
{'state_dict': ...} / {'module': ...} / {'generator': ...} style wrappers
(auto-detected, or --key a.b), and writes a standard safetensors file with
its own small writer (no PyPI safetensors package needed): JSON header
padded with spaces to a multiple of 8, tensors sorted by element size
(largest first, so every tensor is aligned) then by name, data back to back
with no holes, dtype preserved unless --dtype casts the floating-point
tensors. The output is written under a temporary name and renamed.

usage: python3 scripts/convert_pth.py IN.pth OUT.safetensors [--key K] [--dtype bf16|f16|f32]
       [--skip-non-tensor] [--strip-prefix P] [--trust]
Needs Debian's python3-torch; if the python3 on PATH lacks torch, the
script re-runs itself with /usr/bin/python3.
"""
import argparse
import json
import os
import pickle
import struct
import sys

try:
    import torch
except ImportError:
    # pyenv or a venv may shadow Debian's interpreter that has python3-torch.
    if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != os.path.realpath(
            "/usr/bin/python3") and not os.environ.get("REEL_CONVERT_REEXEC"):
        os.environ["REEL_CONVERT_REEXEC"] = "1"
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("convert_pth: needs torch (Debian: apt-get install python3-torch)")

# torch dtype -> safetensors dtype name. fp8 exists only in newer torch.
DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
for _name, _st in (("float8_e4m3fn", "F8_E4M3"), ("float8_e5m2", "F8_E5M2")):
    if hasattr(torch, _name):
        DTYPES[getattr(torch, _name)] = _st

CASTS = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}

# Wrapper keys seen in released checkpoints, tried in order by auto-detection.
WRAPPERS = ["state_dict", "module", "generator", "model", "app.model", "ema", "model_ema"]


def load(path, trust):
    if trust:
        return torch.load(path, map_location="cpu")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch without weights_only
        return torch.load(path, map_location="cpu")
    except pickle.UnpicklingError as e:
        # Full unpickling runs arbitrary code from the file: only on request.
        sys.exit("convert_pth: %s holds more than tensors (%s); if you trust the file, "
                 "rerun with --trust" % (path, str(e).splitlines()[0] if str(e) else "unpickling"))


def is_state_dict(d):
    return isinstance(d, dict) and len(d) > 0 and all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in d.items())


def dig(obj, key):
    for part in key.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


def unwrap(obj, key):
    if key:
        sd = dig(obj, key)
        if sd is None:
            top = ", ".join(sorted(map(str, obj.keys()))) if isinstance(obj, dict) else type(obj)
            sys.exit("convert_pth: no key '%s' in the checkpoint (top-level keys: %s)" % (key, top))
        return sd, key
    if is_state_dict(obj):
        return obj, None
    for k in WRAPPERS:
        sd = dig(obj, k)
        if is_state_dict(sd):
            return sd, k
    if isinstance(obj, dict):
        # Mostly tensors with a few non-tensor entries (e.g. an epoch counter
        # saved beside the weights): take it, the caller reports what is left.
        return obj, None
    sys.exit("convert_pth: the checkpoint is a %s, not a state dict; use --key" % type(obj).__name__)


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)  # numpy has no bfloat16; same bits
    elif DTYPES.get(t.dtype, "").startswith("F8_"):
        t = t.view(torch.uint8)
    a = t.numpy()
    if a.dtype.byteorder == ">" or (a.dtype.byteorder == "=" and sys.byteorder == "big"):
        a = a.astype(a.dtype.newbyteorder("<"))  # safetensors is little-endian
    return a.tobytes()


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, torch.Tensor), written in the given order."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    off = 0
    for name, t in tensors:
        n = t.numel() * t.element_size()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + n]}
        off += n
    hj = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    hj += b" " * (-len(hj) % 8)
    tmp = path + ".tmp%d" % os.getpid()
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hj)))
            f.write(hj)
            for name, t in tensors:
                b = tensor_bytes(t)
                assert len(b) == t.numel() * t.element_size(), name
                f.write(b)
        os.replace(tmp, path)  # never leave a half-written file under the real name
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return off


def main():
    ap = argparse.ArgumentParser(description="Convert a PyTorch .pth/.pt state dict to .safetensors.")
    ap.add_argument("input", help=".pth / .pt checkpoint")
    ap.add_argument("output", help=".safetensors file to write")
    ap.add_argument("--key", help="dotted path of the state dict inside the checkpoint "
                    "(e.g. generator, module, app.model); default: auto-detect")
    ap.add_argument("--dtype", choices=sorted(CASTS), help="cast floating-point tensors to this dtype")
    ap.add_argument("--skip-non-tensor", action="store_true",
                    help="drop non-tensor entries instead of failing")
    ap.add_argument("--strip-prefix", default="", help="remove this prefix from every name that has it")
    ap.add_argument("--trust", action="store_true",
                    help="load with full unpickling (runs code from the file; trusted files only)")
    args = ap.parse_args()

    sd, used = unwrap(load(args.input, args.trust), args.key)
    bad = sorted(str(k) for k, v in sd.items() if not (isinstance(k, str) and torch.is_tensor(v)))
    if bad:
        if not args.skip_non_tensor:
            sys.exit("convert_pth: non-tensor entries %s (use --key or --skip-non-tensor)" % bad[:10])
        print("skipping non-tensor entries: %s" % ", ".join(bad), file=sys.stderr)

    tensors = {}
    for k, t in sd.items():
        if not (isinstance(k, str) and torch.is_tensor(t)):
            continue
        name = k[len(args.strip_prefix):] if args.strip_prefix and k.startswith(args.strip_prefix) else k
        if name in tensors:
            sys.exit("convert_pth: two tensors named '%s' after --strip-prefix" % name)
        if t.dtype not in DTYPES:
            sys.exit("convert_pth: tensor '%s' has dtype %s, which safetensors cannot hold" % (k, t.dtype))
        if args.dtype and t.is_floating_point():
            t = t.to(CASTS[args.dtype])
        tensors[name] = t

    meta = {"format": "pt", "source": os.path.basename(args.input)}
    if used:
        meta["source_key"] = used
    # Largest elements first, then by name (the reference library's order):
    # every offset is then a multiple of its element size, so reel can read
    # the mapped data in place with aligned loads, and the data has no holes.
    order = sorted(tensors.items(), key=lambda kv: (-kv[1].element_size(), kv[0]))
    size = write_safetensors(args.output, order, meta)
    print("%s: %d tensors, %.1f MB%s" % (args.output, len(order), size / 1e6,
                                         " (from '%s')" % used if used else ""))


if __name__ == "__main__":
    main()
