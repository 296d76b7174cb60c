#!/usr/bin/python3
"""make_default_corpus.py - the text corpus the default model's tokenizer is
trained on (configs/reel-default/corpus.txt; the Makefile runs spm_train on it).

    make_default_corpus.py [--lines N] [--seed S] OUT

Caption-like lines from a small grammar - colours x shapes x motions x
backgrounds, the kind of clip the default model is meant to learn - followed
by the prompts of the shipped examples, so that those tokenize into whole
words. Python 3 standard library only; the output depends only on the
arguments (fixed seed), so the committed file can be regenerated exactly:

    python3 scripts/make_default_corpus.py configs/reel-default/corpus.txt
"""
import argparse
import random

COLOURS = ("red orange yellow green blue purple pink white black grey brown "
           "cyan magenta golden silver teal").split()
SHADES = ("light dark bright pale deep").split()
SIZES = ("small large tiny big").split()
SHAPES = ("circle square triangle star ball cube ring disc dot line stripe "
          "rectangle hexagon diamond heart spiral").split()
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles",
           "star": "stars", "ball": "balls", "cube": "cubes", "ring": "rings",
           "disc": "discs", "dot": "dots", "line": "lines", "stripe": "stripes",
           "rectangle": "rectangles", "hexagon": "hexagons",
           "diamond": "diamonds", "heart": "hearts", "spiral": "spirals"}
# (singular, plural) verb phrases.
MOTIONS = (
    ("bounces off the walls", "bounce off the walls"),
    ("moves from left to right", "move from left to right"),
    ("moves from right to left", "move from right to left"),
    ("falls from the top", "fall from the top"),
    ("rises", "rise"),
    ("spins in place", "spin in place"),
    ("rotates clockwise", "rotate clockwise"),
    ("rotates counterclockwise", "rotate counterclockwise"),
    ("grows and shrinks", "grow and shrink"),
    ("pulses", "pulse"),
    ("zigzags across the frame", "zigzag across the frame"),
    ("drifts to the corner", "drift to the corner"),
    ("slides down", "slide down"),
    ("orbits the centre", "orbit the centre"),
    ("wobbles", "wobble"),
    ("fades in", "fade in"),
    ("fades out", "fade out"),
    ("flickers", "flicker"),
    ("jumps up and down", "jump up and down"),
    ("rolls along the floor", "roll along the floor"),
    ("follows a curved path", "follow a curved path"),
    ("shakes", "shake"),
    ("stays still", "stay still"),
    ("expands", "expand"),
    ("splits in two", "split in two"),
    ("changes colour", "change colour"),
)
BACKGROUNDS = ("background", "backdrop", "floor", "sky", "grid", "gradient")
SPEEDS = ("", "", "", "slowly", "quickly", "smoothly", "steadily")
TIMES = (("", ""), ("", ""), ("", ""), ("then stops", "then stop"),
         ("and loops", "and loop"), ("twice", "twice"), ("for a moment", "for a moment"))


def article(word):
    return "an" if word[0] in "aeiou" else "a"


def colour(rng):
    c = rng.choice(COLOURS)
    if rng.random() < 0.25:
        c = rng.choice(SHADES) + " " + c
    return c


def subject(rng):
    shape = rng.choice(SHAPES)
    n = rng.random()
    if n < 0.7:
        adj = [colour(rng)]
        if rng.random() < 0.3:
            adj.insert(0, rng.choice(SIZES))
        words = " ".join(adj) + " " + shape
        return article(words) + " " + words, False
    count = rng.choice(("two", "three", "four", "five", "several", "many"))
    return count + " " + colour(rng) + " " + PLURALS[shape], True


def caption(rng):
    subj, plural = subject(rng)
    parts = [subj, rng.choice(MOTIONS)[plural]]
    speed = rng.choice(SPEEDS)
    if speed:
        parts.append(speed)
    when = rng.choice(TIMES)[plural]
    if when:
        parts.append(when)
    bg = rng.choice(BACKGROUNDS)
    c = colour(rng)
    parts.append("on " + article(c) + " " + c + " " + bg)
    line = " ".join(parts)
    if rng.random() < 0.2:
        subj2, plural2 = subject(rng)
        line += ", while " + subj2 + " " + rng.choice(MOTIONS)[plural2]
    if rng.random() < 0.1:
        line = line[0].upper() + line[1:] + "."
    return line


# The prompts of examples/*.yaml, verbatim.
EXAMPLE_PROMPTS = (
    "a red paper boat drifting on a calm blue lake, morning light",
    "a lighthouse on a rocky coast at dusk, waves breaking, slow dolly in",
    "Two anthropomorphic cats in comfy boxing gear and bright gloves fight "
    "intensely on a spotlighted stage.",
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--lines", type=int, default=4000, help="grammar lines (default 4000)")
    ap.add_argument("--seed", type=int, default=20240601)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    with open(a.out, "w", encoding="utf-8", newline="\n") as f:
        for _ in range(a.lines):
            f.write(caption(rng) + "\n")
        for p in EXAMPLE_PROMPTS:
            f.write(p + "\n")


if __name__ == "__main__":
    main()
