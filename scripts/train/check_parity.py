#!/usr/bin/python3
"""check_parity.py MODEL_CONFIG [--out DIR] - is what was trained what reel runs?

Writes a golden-format file (../shared/golden/README-audio.md) for the
model's fusion DiT with its exported weights (bf16 as shipped, computed in
float32 by make_golden_ovi.fusion_run - the forward the training uses), on
seeded inputs at a small latent grid, and runs `reel check` on it: reel's C
engine must reproduce out.vid / out.audio within the format's tolerance.
Exit status is reel check's."""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import REPO  # noqa: E402
import make_golden as mg  # noqa: E402
import make_golden_ovi as mo  # noqa: E402
import train_dit as td  # noqa: E402


def weights_dir(cfg_path, mc):
    d = os.path.expandvars(mc["weights_dir"])
    return d if os.path.isabs(d) else os.path.join(os.path.dirname(os.path.abspath(cfg_path)), d)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config")
    ap.add_argument("--out", default=None)
    ap.add_argument("--reel", default=os.path.join(REPO, "build", "reel"))
    ap.add_argument("--golden", default=os.environ.get("REEL_GOLDEN_DIR") or
                    os.path.join(os.path.dirname(REPO), "shared", "golden"))
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    mc = common.load_model_config(a.config)
    tc = td.tower_cfgs(mc)
    W, _ = common.st_load(os.path.join(weights_dir(a.config, mc), mc["dit"]["weights"]),
                          torch.float32)
    _, smeta = mg.st_read(os.path.join(a.golden, "ovi_fusion.safetensors"))
    rng = np.random.default_rng(5)
    C, F, H, Wd = tc["video"]["in_dim"], 3, 8, 8
    L = 24
    td_ = tc["video"]["text_dim"]
    ins = [("in.vid", rng.standard_normal((C, F, H, Wd)).astype(np.float32)),
           ("in.audio", rng.standard_normal((L, tc["audio"]["in_dim"])).astype(np.float32)),
           ("in.vid_context", rng.standard_normal((7, td_)).astype(np.float32)),
           ("in.audio_context", rng.standard_normal((7, td_)).astype(np.float32)),
           ("in.t", np.asarray([613.0], np.float32)),
           ("in.vid_seq_len", np.asarray([F * (H // 2) * (Wd // 2)], np.int64)),
           ("in.audio_seq_len", np.asarray([L], np.int64))]
    weights = [("weights." + k, v.numpy()) for k, v in W.items()]
    cfg = {"audio": tc["audio"], "audio_seq_len": L, "vid_seq_len": F * (H // 2) * (Wd // 2),
           "video": tc["video"], "fusion_block_count": tc["video"]["num_layers"],
           "blocks_executed": list(range(tc["video"]["num_layers"])), "slg_layer": False}
    meta = {"config": json.dumps(cfg, sort_keys=True)}
    T = dict(weights + ins)
    res = mo.run_case(T, meta, torch.float32)
    meta.update({"description": "reel-default parity: the trained fusion weights (%s)" % a.config,
                 "dtype": smeta["dtype"], "generator": "scripts/train/check_parity.py",
                 "torch_patches": json.dumps([]), "reference": smeta["reference"],
                 "weight_norm_removed": smeta["weight_norm_removed"]})
    out = a.out or os.path.join(os.path.dirname(os.path.abspath(a.config)), "parity")
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "parity_fusion.safetensors")
    mg.st_write(path, weights + ins + [("out.vid", mg.to_np(res["out.vid"])),
                                        ("out.audio", mg.to_np(res["out.audio"]))], meta)
    return subprocess.run([a.reel, "check", path]).returncode


if __name__ == "__main__":
    sys.exit(main())
