"""captions.py - the attribute vocabulary, the caption grammar and the
held-out split of the synthetic dataset.

A clip is one object of a named colour and shape, moving one way, on a
named flat background. Its caption comes from a small grammar:

    caption  := article COLOUR SHAPE MOTION " on " article BACKGROUND " background"
              | "on " article BACKGROUND " background, " article COLOUR SHAPE MOTION
    article  := "a" | "an"            (an before a vowel)
    MOTION   := one of a motion's phrases (MOTION_PHRASES; the first is canonical)

e.g. "a red circle bounces off the walls on a dark blue background". Template 0
with phrase 0 is the canonical caption; parse() maps any caption the grammar
can produce back to its attributes.

Held-out split: every (colour, shape, background, motion) combination gets
a fixed pseudo-random number from SHA-256 of its names; combinations below
HELDOUT_FRACTION are held out of training. The rule depends on the names
only, so adding a value later leaves every existing combination's side
unchanged. check_split() verifies that every single value and every pair of
values of two different attributes still occurs in training.
"""
import hashlib
import itertools
import re

# name -> RGB (uint8). Saturated, pairwise far apart (>= 80 in RGB), and
# far from every background (>= 100).
COLOURS = {
    "red": (230, 40, 40),
    "orange": (255, 140, 0),
    "yellow": (245, 225, 30),
    "green": (40, 200, 60),
    "cyan": (30, 210, 230),
    "blue": (40, 90, 250),
    "purple": (150, 60, 220),
    "pink": (255, 110, 190),
}

BACKGROUNDS = {
    "dark blue": (16, 32, 96),
    "black": (0, 0, 0),
    "white": (250, 250, 250),
    "grey": (128, 128, 128),
    "dark green": (10, 60, 30),
}

# The shapes clips are drawn with (data version 4 keeps three of the five the
# rasteriser draws, scenes.shape_parts: diamond and star are left out so
# that the default model's world is small enough to learn on a CPU).
SHAPES = ("circle", "square", "triangle")

# Impact pitch by shape (Hz).
PITCH = {"square": 440.0, "diamond": 550.0, "circle": 660.0,
         "triangle": 880.0, "star": 1100.0}

MOTIONS = ("bounce", "slide_right", "slide_left", "fall", "still")

# First phrase is canonical. Kept small; every phrase is unique to a motion.
MOTION_PHRASES = {
    "bounce": ("bounces off the walls", "bounces around the frame"),
    "slide_right": ("slides from left to right", "moves from left to right"),
    "slide_left": ("slides from right to left", "moves from right to left"),
    "fall": ("falls and bounces", "falls from the top and bounces"),
    "still": ("stays still", "rests in place"),
}

TEMPLATES = (
    "{a} {colour} {shape} {motion} on {b} {background} background",
    "on {b} {background} background, {a} {colour} {shape} {motion}",
)

ATTRS = ("colour", "shape", "background", "motion")
VALUES = {
    "colour": tuple(COLOURS),
    "shape": SHAPES,
    "background": tuple(BACKGROUNDS),
    "motion": MOTIONS,
}

HELDOUT_FRACTION = 0.15


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def caption(colour, shape, background, motion, template=0, phrase=0):
    """The caption of a clip; template 0, phrase 0 is the canonical one."""
    words = colour + " " + shape
    return TEMPLATES[template].format(
        a=article(words), colour=colour, shape=shape,
        motion=MOTION_PHRASES[motion][phrase],
        b=article(background), background=background)


def n_variants(motion):
    return len(TEMPLATES) * len(MOTION_PHRASES[motion])


def _alt(words):
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_PHRASE_TO_MOTION = {p: m for m, ps in MOTION_PHRASES.items() for p in ps}
_C, _S, _B = _alt(COLOURS), _alt(SHAPES), _alt(BACKGROUNDS)
_M = _alt(_PHRASE_TO_MOTION)
_PATTERNS = (
    re.compile(rf"(an?) ({_C}) ({_S}) ({_M}) on (an?) ({_B}) background"),
    re.compile(rf"on (an?) ({_B}) background, (an?) ({_C}) ({_S}) ({_M})"),
)


def parse(text):
    """Caption -> dict(colour, shape, background, motion); ValueError if the
    grammar cannot produce it (articles must agree too)."""
    t = " ".join(text.strip().lower().rstrip(".").split())
    m = _PATTERNS[0].fullmatch(t)
    if m:
        a1, c, s, ph, a2, b = m.groups()
    else:
        m = _PATTERNS[1].fullmatch(t)
        if not m:
            raise ValueError("not a caption of the grammar: %r" % text)
        a2, b, a1, c, s, ph = m.groups()
    if a1 != article(c) or a2 != article(b):
        raise ValueError("wrong article in %r" % text)
    return {"colour": c, "shape": s, "background": b,
            "motion": _PHRASE_TO_MOTION[ph]}


def all_combos():
    """Every (colour, shape, background, motion), in a fixed order."""
    return list(itertools.product(*(VALUES[a] for a in ATTRS)))


def combo_hash(combo):
    """A fixed number in [0, 1) for a combination, from its names."""
    h = hashlib.sha256("|".join(combo).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2.0 ** 64


def is_heldout(combo):
    return combo_hash(tuple(combo)) < HELDOUT_FRACTION


def split_combos(split):
    """The combinations of a split ('train' or 'heldout'), fixed order."""
    if split not in ("train", "heldout"):
        raise ValueError("split must be train or heldout")
    want = split == "heldout"
    return [c for c in all_combos() if is_heldout(c) == want]


def check_split():
    """Problems with the split (empty list when fine): overlap, and values
    or pairs of values of two attributes that never occur in training."""
    train, held = split_combos("train"), split_combos("heldout")
    problems = []
    if set(train) & set(held):
        problems.append("train and heldout overlap")
    if not held:
        problems.append("nothing held out")
    for i, j in itertools.combinations(range(len(ATTRS)), 2):
        seen = {(c[i], c[j]) for c in train}
        for vi in VALUES[ATTRS[i]]:
            for vj in VALUES[ATTRS[j]]:
                if (vi, vj) not in seen:
                    problems.append("pair %s=%s, %s=%s never in train"
                                    % (ATTRS[i], vi, ATTRS[j], vj))
    return problems
