#!/usr/bin/python3
"""make_tokenizer_corpus.py - a deterministic mixed-script text corpus for the
tokenizer test (tests/t_tokenizer.sh).

    make_tokenizer_corpus.py --lines N OUT_TRAIN OUT_CORPUS [--train-lines M]

OUT_CORPUS gets N lines (default 12000) meant to be hard on a tokenizer:
prompt-like ASCII, accented Latin, Cyrillic, Greek, Arabic, Hebrew, Thai,
Devanagari, CJK, Hangul, emoji (ZWJ sequences, skin tones, flags), digits and
punctuation, runs of spaces, tabs, Unicode spaces (NBSP, U+3000), combining
marks, leading/trailing blanks, empty lines, very long lines, a trailing CR,
and a few byte sequences that are not valid UTF-8 or hold a NUL.
OUT_TRAIN gets the first M (default 3000) well-formed lines, for spm_train.
The output depends only on the arguments (fixed seed)."""
import argparse
import random

WORDS = (
    "a the cat dog city street night rain neon light camera slowly pans across "
    "golden hour sunset over ocean waves crashing rocks cinematic shot close-up "
    "portrait young woman old man walking running dancing in the forest mist "
    "mountains snow drone aerial view futuristic robot spaceship galaxy stars "
    "4k 8k hdr film grain bokeh shallow depth of field tracking shot, wide angle; "
    "vibrant colors muted tones watercolor oil painting anime style photorealistic"
).split()
ACCENTED = ("café naïve façade crème brûlée über Straße Ærøskøbing São Paulo "
            "niño señor mañana Đà Nẵng Tiếng Việt łódź Žluťoučký kůň smörgåsbord "
            "àéîõü ÀÉÎÕÜ ﬁ ﬂ Å").split()
OTHER = ("Привет мир ночной город Καλημέρα κόσμε مرحبا بالعالم שלום עולם "
         "สวัสดีชาวโลก नमस्ते दुनिया ሰላም ዓለም Բարեւ աշխարհ").split()
CJK = ["一只猫在雨中的城市里走", "色调艳丽，过曝，静态，细节模糊不清", "最差质量，低质量，JPEG压缩残留",
       "東京の夜景、ネオンが光る", "カメラがゆっくりパンする", "서울의 밤거리를 걷는 사람",
       "한국어 텍스트 토큰화", "漢字かな交じり文", "三条腿，背景人很多，倒着走", "ｆｕｌｌｗｉｄｔｈ　ＡＢＣ１２３"]
EMOJI = ["😀", "🎬", "🌧️", "👩‍👩‍👧‍👦", "👍🏽", "🇯🇵", "🇫🇷", "❤️", "🧑‍🚀", "🐈‍⬛", "✨", "🔥",
         "1️⃣", "🏳️‍🌈", "👨🏿‍💻"]
PUNCT = list(".,;:!?-—–…'\"()[]{}<>/\\|@#$%^&*_+=~`") + ["«", "»", "“", "”", "‘", "’", "、", "。"]
SPACES = [" ", "  ", "   ", "\t", " \t ", "\u00a0", "\u3000", "\u2003", "        "]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "\u0915\u094d\u0937"]


def token(r):
    k = r.random()
    if k < 0.45:
        return r.choice(WORDS)
    if k < 0.55:
        return r.choice(ACCENTED)
    if k < 0.63:
        return r.choice(OTHER)
    if k < 0.73:
        return r.choice(CJK)
    if k < 0.80:
        return r.choice(EMOJI)
    if k < 0.86:
        return str(r.randint(0, 10 ** r.randint(1, 9)))
    if k < 0.92:
        return r.choice(PUNCT) * r.randint(1, 3)
    if k < 0.96:
        return r.choice(COMBINING)
    return r.choice(WORDS).upper()


def line(r):
    k = r.random()
    if k < 0.04:
        return ""
    if k < 0.06:
        return r.choice(SPACES) * r.randint(1, 4)  # blanks only
    n = r.randint(1, 40)
    if k < 0.07:
        n = r.randint(300, 2000)  # very long lines
    parts = []
    for i in range(n):
        if i:
            parts.append(" " if r.random() < 0.8 else r.choice(SPACES))
        parts.append(token(r))
    s = "".join(parts)
    if r.random() < 0.1:
        s = r.choice(SPACES) + s
    if r.random() < 0.1:
        s = s + r.choice(SPACES)
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("train")
    ap.add_argument("corpus")
    ap.add_argument("--lines", type=int, default=12000)
    ap.add_argument("--train-lines", type=int, default=3000)
    a = ap.parse_args()
    r = random.Random(20240611)
    lines = [line(r).encode("utf-8") for _ in range(a.lines)]
    with open(a.train, "wb") as f:
        for s in lines[: a.train_lines]:
            f.write(s + b"\n")
    # edge cases only in the encoded corpus: bad UTF-8, a NUL, a CR before
    # the newline, one line of 100k characters, no newline at the very end
    extra = [b"bad \xff\xfe utf-8 \xc3", b"truncated \xe4\xb8", b"nul\x00inside",
             b"crlf line\r", b"\r", b"x" * 100000, "猫 " .encode() * 20000]
    with open(a.corpus, "wb") as f:
        for i, s in enumerate(lines):
            f.write(s + b"\n")
            if i % 1000 == 500 and extra:
                f.write(extra.pop() + b"\n")
        f.write(b"last line without a newline")


if __name__ == "__main__":
    main()
