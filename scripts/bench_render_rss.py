#!/usr/bin/env python3
"""Peak resident memory of the streaming decode (VAE -> encoder) of `reel
render`, for a short and a 4x longer clip.

usage: bench_render_rss.py REEL SPEC N_SHORT N_LONG

For each length N, renders SPEC with --set frames=N into a temporary
directory, then deletes the output and the decode stage's completion record
and renders again: the second process loads the models and runs only the
decode + mux stage (text and denoise are skipped from the work directory),
so its peak RSS (getrusage) is the decode's. The denoise stage itself holds
the whole latent and grows with the clip by nature. Prints
  bench: render_peak_rss_<N_LONG>f_vs_<N_SHORT>f ours=<long MiB> ref=<short MiB> ratio=<short/long> unit=MiB
"""
import os
import resource
import subprocess
import sys
import tempfile


def peak_rss_mib(cmd):
    pid = os.fork()
    if pid == 0:
        os.execv(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("render failed: %s" % " ".join(cmd))
    return usage.ru_maxrss / 1024.0  # KiB on Linux


def main():
    reel, spec, n_short, n_long = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with tempfile.TemporaryDirectory() as d:
        rss = {}
        for n in (n_short, n_long):
            out = os.path.join(d, "clip_%d.mp4" % n)
            cmd = [os.path.abspath(reel), "render", spec, "-o", out, "--json",
                   "--set", "frames=%d" % n]
            with open(os.devnull, "w") as null:
                saved = os.dup(2)
                os.dup2(null.fileno(), 2)
                try:
                    full = peak_rss_mib(cmd)
                    os.unlink(out)
                    os.unlink(os.path.join(d, ".clip_%d.mp4.reel" % n, "decode.done"))
                    rss[n] = peak_rss_mib(cmd)
                finally:
                    os.dup2(saved, 2)
                    os.close(saved)
            print("# %d frames: peak RSS %.1f MiB for decode + mux, %.1f MiB for the whole render"
                  % (n, rss[n], full))
    print("bench: decode_peak_rss_%df_vs_%df ours=%.1f ref=%.1f ratio=%.3f unit=MiB"
          % (n_long, n_short, rss[n_long], rss[n_short], rss[n_short] / rss[n_long]))


if __name__ == "__main__":
    main()
