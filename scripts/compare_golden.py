#!/usr/bin/python3
"""compare_golden.py A B - are two golden-format files the same case?

Names, dtypes, shapes and integer tensors must be identical; float tensors
may differ by float rounding, since some inputs are computed too (the audio
files' in.mel comes from the mel converter): PyTorch's CPU kernels round
differently on other CPUs (seen: ~1e-6 between an Intel and an AMD AVX-512
machine), so they must agree within 2e-5 x max(1, max|A|). Metadata must be equal except the
measured f32_vs_f64 report. Exit 0 when the same; else prints why, exit 1."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "train"))
from common import st_load  # noqa: E402

RTOL = 2e-5


def compare(a_path, b_path):
    A, ma = st_load(a_path)
    B, mb = st_load(b_path)
    if list(A) != list(B):
        d = sorted(set(A) ^ set(B))
        return "tensor names differ (%d): %s" % (len(d), ", ".join(d[:5]) + (" ..." if len(d) > 5 else ""))
    skip = {"f32_vs_f64"}
    if {k: v for k, v in ma.items() if k not in skip} != {k: v for k, v in mb.items() if k not in skip}:
        return "metadata differs"
    worst = (0.0, "")
    for name in A:
        a, b = A[name], B[name]
        if a.dtype != b.dtype or tuple(a.shape) != tuple(b.shape):
            return "%s: dtype/shape differ" % name
        x, y = a.numpy(), b.numpy()
        if not a.is_floating_point():
            if x.tobytes() != y.tobytes():
                return "%s: integer tensor differs" % name
            continue
        d = float(np.abs(x.astype(np.float64) - y).max()) if x.size else 0.0
        lim = RTOL * max(1.0, float(np.abs(x).max()) if x.size else 0.0)
        if d > lim:
            return "%s: max abs diff %.3g > %.3g" % (name, d, lim)
        worst = max(worst, (d, name))
    return None if worst[0] == 0.0 else ("", worst)


def main():
    r = compare(sys.argv[1], sys.argv[2])
    if r is None:
        print("identical")
        return 0
    if isinstance(r, tuple):
        print("equal within rounding (worst %s %.3g)" % (r[1][1], r[1][0]))
        return 0
    print(r)
    return 1


if __name__ == "__main__":
    sys.exit(main())
