"""synth - the synthetic joint audio-video dataset (issue 6).

    captions  attribute vocabulary, caption grammar, parse(), held-out split
    scenes    scene sampler, analytic motion, numpy rasteriser
    audio     impact sounds (16 kHz mono) and a simple onset detector
    make_dataset  clip generation, .npz shards, load_shard(), previews (CLI)

The modules import each other as top-level modules, so this directory is put
on sys.path here; `import synth` (with scripts/ on the path) or running a
module from this directory both work.
"""
import os
import sys

_here = os.path.dirname(os.path.abspath(__file__))
if _here not in sys.path:
    sys.path.insert(0, _here)

from make_dataset import generate_clip, load_shard, write_shard  # noqa: E402,F401
