#!/usr/bin/python3
"""export_default.py - stage 5: install the trained default model into
configs/reel-default/ (the files `make demo` renders with).

    export_default.py --train DIR [--to configs/reel-default] [--config configs/reel-default.yaml]
    export_default.py --train DIR --snapshot SNAP     (a running training, beside the shipped model)

Takes from the training directory DIR (what `make train-default` fills):
  DIR/vae2x/vae.safetensors (or the VAE stage      stage 1b (f16): the VAE the DiT's
  DIR/dit/prep_source.json names)                   latents were prepared with
  DIR/audio/audio_vae.safetensors, vocoder.safetensors   stage 2 (f16)
  DIR/dit/ckpt.pt or ckpt.d -> fusion.safetensors, text_encoder.safetensors (EMA, bf16)
and the tokenizer the text encoder was trained with. It writes the video
latent statistics the DiT was trained with (DIR/dit/prep.json) into the
config's vae.latent_mean / latent_std, sets `trained: true`, and records the
exact training arguments, data seeds and final losses of every stage in
TO/training.json; checks the total stays within 50 MB and that reel's C
engine reproduces the trained fusion DiT (check_parity.py).

--snapshot SNAP installs the current state of DIR (the DiT's latest
checkpoint, mid-run included) as a model of its own, SNAP/reel-default.yaml
+ SNAP/reel-default/, leaving configs/ untouched:
    eval_default.py --model SNAP/reel-default.yaml --n 12 --frames 2
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import REPO  # noqa: E402

LIMIT = 50 * 1000 * 1000


def load_json(path):
    with open(path) as f:
        return json.load(f)


def set_list(text, key, values):
    """Replace the `key: [...]` line of the vae section (the config's only one)."""
    pat = re.compile(r"^(\s*%s:\s*)\[[^\]]*\]" % re.escape(key), re.M)
    new, n = pat.subn(lambda m: m.group(1) + "[" + ", ".join("%.6f" % v for v in values) + "]",
                      text)
    if n != 1:
        raise SystemExit("%s: expected one '%s:' list" % ("config", key))
    return new


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True)
    ap.add_argument("--to", default=os.path.join(REPO, "configs", "reel-default"))
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "reel-default.yaml"))
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--snapshot", metavar="SNAP", help="install into SNAP instead of configs/")
    a = ap.parse_args(argv)
    T = a.train
    if a.snapshot:
        # the shipped config and tokenizer, beside the snapshot's weights
        # (weights_dir is relative to the config file)
        a.to = os.path.join(a.snapshot, "reel-default")
        os.makedirs(a.to, exist_ok=True)
        src_cfg = a.config
        a.config = os.path.join(a.snapshot, "reel-default.yaml")
        shutil.copyfile(src_cfg, a.config)
        shutil.copyfile(os.path.join(os.path.dirname(src_cfg), "reel-default", "tokenizer.model"),
                        os.path.join(a.to, "tokenizer.model"))
    os.makedirs(a.to, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(REPO, "scripts", "train", "train_dit.py"),
                    "export", "--out", os.path.join(T, "dit"), "--to", a.to, "--dtype", a.dtype],
                   check=True)
    ps = os.path.join(T, "dit", "prep_source.json")
    if not os.path.exists(ps):
        raise SystemExit("%s: missing - run train_dit.py prepare (it records the VAE the latents "
                         "come from)" % ps)
    prep_source = load_json(ps)
    src = prep_source["video"]
    vae_stage = src["vae_stage"]
    vae_file = os.path.join(T, vae_stage, "vae.safetensors")
    if common.file_sha256(vae_file) != src["vae"]:
        raise SystemExit("%s is not the VAE the DiT's latents were prepared with (%s/prep_source.json);"
                         " run train_dit.py prepare again" % (vae_file, os.path.join(T, "dit")))
    for src, name in ((vae_file, "vae.safetensors"),
                      (os.path.join(T, "audio", "audio_vae.safetensors"), "audio_vae.safetensors"),
                      (os.path.join(T, "audio", "vocoder.safetensors"), "vocoder.safetensors")):
        shutil.copyfile(src, os.path.join(a.to, name + ".tmp"))
        os.replace(os.path.join(a.to, name + ".tmp"), os.path.join(a.to, name))

    prep = load_json(os.path.join(T, "dit", "prep.json"))
    with open(a.config) as f:
        text = f.read()
    text = set_list(text, "latent_mean", prep["latent_mean"])
    text = set_list(text, "latent_std", prep["latent_std"])
    text = re.sub(r"^trained:\s*\w+", "trained: true", text, flags=re.M)
    with open(a.config + ".tmp", "w") as f:
        f.write(text)
    os.replace(a.config + ".tmp", a.config)

    record = {
        "vae_stage": vae_stage,
        "vae": load_json(os.path.join(T, "vae", "stats.json")),
        "audio": load_json(os.path.join(T, "audio", "stats.json")),
        # prep_source: the clips' generator version, seed and counts, and
        # the frozen VAE / audio VAE the latents came from
        "dit": {"prep": prep, "prep_source": prep_source,
                "export": load_json(os.path.join(T, "dit", "export.json"))},
    }
    if vae_stage != "vae":
        record[vae_stage] = load_json(os.path.join(T, vae_stage, "stats.json"))
    common.write_json_atomic(os.path.join(a.to, "training.json"), record)
    # what was trained is what reel runs: the C engine on the shipped weights
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(REPO, "scripts", "train", "check_parity.py"),
                        a.config, "--out", tmp], check=True)
    total = sum(os.path.getsize(os.path.join(a.to, f)) for f in os.listdir(a.to)
                if f.endswith((".safetensors", ".model")))
    print("installed the trained default model in %s: %.1f MB of weights" % (a.to, total / 1e6))
    if total > LIMIT:
        raise SystemExit("the shipped weights exceed 50 MB (%d bytes)" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
