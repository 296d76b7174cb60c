"""eval_metrics.py - read a rendered clip back and score it against its prompt.

Pure numpy; no training. Every function takes decoded media:
video uint8 [T, H, W, 3] (RGB), audio float32 [samples] (mono) at sr Hz.

Per clip (evaluate_clip):

  object      Per frame, the background is the median colour of the frame's
              one-pixel border. Pixels farther than FG_DIST (RGB distance)
              from it are foreground; the largest 8-connected foreground
              component is the object. Its colour fg is the median of its
              "core" pixels (those at least 70 % as far from the background
              as the farthest one), and every pixel gets a soft coverage
              alpha = projection of (pixel - bg) onto (fg - bg), in [0, 1].
  colour      The median of fg over the tracked frames -> the nearest colour
              of captions.COLOURS (RGB distance).
  shape       Template matching, no training: for each tracked frame (object
              clear of the frame edge) and each of the five shapes, the
              shape is rasterised with scenes.coverage() at the size that
              gives the measured area (sum of alpha), centred on the measured
              alpha centroid; the error is sum |alpha - template| / area.
              The shape with the smallest median error over frames wins.
  coherent    The clip passes when (a) every frame has an object: a largest
              component of OBJ_MIN_FRAC .. OBJ_MAX_FRAC of the frame area
              holding >= MAIN_FRAC of the foreground, with the rest of the
              foreground < CLUTTER_FRAC of the frame; (b) no flicker: the
              object's area changes by less than AREA_JUMP x between
              consecutive frames, its colour by < COLOUR_JUMP, and its
              centroid by < JUMP_FRAC of the frame size; (c) it moves as
              the prompt says: a "still" prompt travels < STILL_PX in total,
              any other motion's centroid range is >= MOVE_PX.
              frames_without_object counts the frames failing (a) (specks
              or a split object): how far from coherent a clip is.
              motion_class (bounce / slide_right / slide_left / fall /
              still, from the centroid track) is reported as well.
  wall hits   From the centroid track of a coherent clip: on each axis, a
              frame k where the velocity towards a wall (>= V_MIN px/frame)
              reverses or stops, with the object's bounding box within
              1.5 px + WALL_SLACK x the frame size + the speed of that wall
              at frame k. The sub-frame time
              is where the straight lines through the two frames before and
              the two frames after k cross (clamped to k +- 1); events
              closer than half a frame are one event (corner hits).
  onsets      Audio energy in 2 ms windows every 1 ms; an onset is a window
              whose energy is >= ONSET_RISE x the mean energy 4..12 ms
              before it and within ONSET_FLOOR_DB of the clip's loudest
              window (and above an absolute floor); onsets closer than
              ONSET_GAP_S are one; none in the first 8 ms (sound already
              playing when the clip starts is no onset). An onset is
              "strong" when the peak amplitude in the 30 ms after it is
              >= STRONG_FRAC of the clip's loudest onset peak (quieter ones
              are tolerated when unmatched: a falling object's last tiny
              rebounds are audible but invisible).
  sync        Video events E and audio onsets O are matched one to one,
              closest pairs first, when |t_E - t_O| <= 1 / fps (one video
              frame). Per clip: matched M, expected = |E| + the strong
              onsets left unmatched (sound where nothing hits a wall counts
              against it). A clip whose object cannot be tracked has
              unknown E: when its prompt's motion has impacts (bounce,
              fall) it counts max(1, strong onsets) expected, 0 matched.
              sync_1f = sum M / sum expected over the clips with
              expected > 0 (clips with neither impacts nor sound are left
              out; NaN when no clip counts).
"""
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "synth"))
import captions  # noqa: E402
import scenes  # noqa: E402

FG_DIST = 45.0          # RGB distance from the background to call a pixel foreground
OBJ_MIN_FRAC = 0.002    # object area, fraction of the frame
OBJ_MAX_FRAC = 0.25
MAIN_FRAC = 0.8         # the object holds at least this share of the foreground
CLUTTER_FRAC = 0.01     # other foreground, fraction of the frame
AREA_JUMP = 1.6         # frame-to-frame area ratio limit
COLOUR_JUMP = 60.0      # frame-to-frame object colour change limit (RGB distance)
JUMP_FRAC = 0.3         # frame-to-frame centroid jump limit, fraction of max(W, H)
STILL_PX = 2.0          # a still object's centroid range (px) stays below this
MOVE_PX = 4.0           # a moving object's centroid range (px) reaches this
V_MIN = 0.5             # px / frame towards a wall for a wall hit
# A render's edges are soft: the VAE round trip of ground truth (in sync by
# construction) rounds a triangle's tip or a diamond's corner off by up to
# ~6 px at 128x128 and turns the object round that far from the wall; a
# reversal this close to a wall is its hit (fraction of the frame size)
WALL_SLACK = 0.06
ONSET_WIN_S, ONSET_HOP_S = 0.002, 0.001
ONSET_RISE = 8.0
ONSET_FLOOR_DB = 35.0
ONSET_ABS_FLOOR = 1e-8  # mean square
ONSET_GAP_S = 0.03
STRONG_FRAC = 0.25
IMPACT_MOTIONS = ("bounce", "fall")

_COLOUR_NAMES = list(captions.COLOURS)
_COLOUR_RGB = np.array([captions.COLOURS[c] for c in _COLOUR_NAMES], np.float32)
_BG_NAMES = list(captions.BACKGROUNDS)
_BG_RGB = np.array([captions.BACKGROUNDS[c] for c in _BG_NAMES], np.float32)


# ---------------------------------------------------------------- segmentation

def _label(mask):
    """8-connected components of a bool [H, W] mask: (labels int32, sizes
    array where sizes[k] is the size of label k + 1). Union-find on runs."""
    H, W = mask.shape
    labels = np.zeros((H, W), np.int32)
    parent = [0]

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a
    prev_runs = []
    for y in range(H):
        row = mask[y]
        if not row.any():
            prev_runs = []
            continue
        d = np.diff(np.concatenate([[0], row.view(np.int8), [0]]))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        runs = []
        for s, e in zip(starts, ends):
            lab = 0
            for ps, pe, pl in prev_runs:
                if ps <= e and pe >= s:         # overlap incl. diagonal (8-connectivity)
                    if lab == 0:
                        lab = find(pl)
                    else:
                        a, b = find(pl), lab
                        if a != b:
                            parent[max(a, b)] = min(a, b)
                            lab = min(a, b)
            if lab == 0:
                lab = len(parent)
                parent.append(lab)
            labels[y, s:e] = lab
            runs.append((s, e, lab))
        prev_runs = runs
    if len(parent) == 1:
        return labels, np.zeros(0, np.int64)
    root = np.array([find(i) for i in range(len(parent))], np.int32)
    labels = root[labels]
    sizes = np.bincount(labels.ravel(), minlength=len(parent))[1:]
    return labels, sizes


def _border_median(frame):
    f = frame.astype(np.float32)
    ring = np.concatenate([f[0], f[-1], f[1:-1, 0], f[1:-1, -1]])
    return np.median(ring, axis=0)


def analyse_frame(frame):
    """One frame -> dict: bg, fg (RGB float), ok, area (soft), cx, cy,
    bbox (x0, y0, x1, y1 in pixel-edge coordinates), alpha [H, W] (0 outside
    the object), fg_frac, main_frac."""
    H, W, _ = frame.shape
    f = frame.astype(np.float32)
    bg = _border_median(frame)
    dist = np.sqrt(((f - bg) ** 2).sum(-1))
    fgmask = dist > FG_DIST
    nfg = int(fgmask.sum())
    out = {"bg": bg, "ok": False, "fg_frac": nfg / (H * W), "main_frac": 0.0}
    if nfg == 0:
        return out
    labels, sizes = _label(fgmask)
    k = int(np.argmax(sizes)) + 1
    obj = labels == k
    nobj = int(sizes[k - 1])
    out["main_frac"] = nobj / nfg
    out["obj_frac"] = nobj / (H * W)
    d_obj = dist[obj]
    core = obj & (dist >= 0.7 * d_obj.max())
    fg = np.median(f[core], axis=0)
    out["fg"] = fg
    u = fg - bg
    uu = float(u @ u)
    if uu < 1.0:
        return out
    # soft coverage in the object's neighbourhood (its bbox grown by 2 px)
    ys, xs = np.nonzero(obj)
    y0, y1 = max(0, ys.min() - 2), min(H, ys.max() + 3)
    x0, x1 = max(0, xs.min() - 2), min(W, xs.max() + 3)
    alpha = np.zeros((H, W), np.float32)
    sub = ((f[y0:y1, x0:x1] - bg) @ u) / uu
    sub = np.clip(sub, 0.0, 1.0)
    # keep only pixels of this object (or its antialiased rim), not other blobs
    near = np.zeros((H, W), bool)
    near[y0:y1, x0:x1] = True
    other = fgmask & ~obj
    sub[other[y0:y1, x0:x1]] = 0.0
    alpha[y0:y1, x0:x1] = sub
    alpha[~near] = 0.0
    area = float(alpha.sum())
    if area <= 0:
        return out
    jj = np.arange(W, dtype=np.float64) + 0.5
    ii = np.arange(H, dtype=np.float64) + 0.5
    cx = float((alpha.sum(0) * jj).sum() / area)
    cy = float((alpha.sum(1) * ii).sum() / area)
    m = alpha >= 0.5
    if m.any():
        ys2, xs2 = np.nonzero(m)
        bbox = (float(xs2.min()), float(ys2.min()), float(xs2.max() + 1), float(ys2.max() + 1))
    else:
        bbox = (float(x0), float(y0), float(x1), float(y1))
    clutter = (nfg - nobj) / (H * W)
    ok = (OBJ_MIN_FRAC <= nobj / (H * W) <= OBJ_MAX_FRAC and out["main_frac"] >= MAIN_FRAC
          and clutter < CLUTTER_FRAC)
    out.update(ok=ok, area=area, cx=cx, cy=cy, bbox=bbox, alpha=alpha, clutter=clutter)
    return out


# ---------------------------------------------------------------- colour / shape

def nearest_colour(rgb):
    d = np.sqrt(((_COLOUR_RGB - np.asarray(rgb, np.float32)) ** 2).sum(1))
    return _COLOUR_NAMES[int(np.argmin(d))]


def nearest_background(rgb):
    d = np.sqrt(((_BG_RGB - np.asarray(rgb, np.float32)) ** 2).sum(1))
    return _BG_NAMES[int(np.argmin(d))]


_AREA_K = {}


def _area_k(shape):
    """Area of a shape of size parameter r = 1 (area = k r^2), from the
    rasteriser at a large size."""
    if shape not in _AREA_K:
        r = 200.0
        g = np.arange(-400, 400, dtype=np.float32) + 0.5
        a = scenes.coverage(shape, r, g[None, :], g[:, None])
        _AREA_K[shape] = float(a.sum()) / (r * r)
    return _AREA_K[shape]


def shape_errors(fr):
    """Template errors {shape: err} of one analysed frame."""
    alpha, area = fr["alpha"], fr["area"]
    H, W = alpha.shape
    x0, y0, x1, y1 = fr["bbox"]
    pad = 4 + 0.3 * max(x1 - x0, y1 - y0)
    xa, xb = int(max(0, math.floor(x0 - pad))), int(min(W, math.ceil(x1 + pad)))
    ya, yb = int(max(0, math.floor(y0 - pad))), int(min(H, math.ceil(y1 + pad)))
    obs = alpha[ya:yb, xa:xb]
    dx = (np.arange(xa, xb, dtype=np.float32) + 0.5 - fr["cx"])[None, :]
    dy = (np.arange(ya, yb, dtype=np.float32) + 0.5 - fr["cy"])[:, None]
    errs = {}
    for s in captions.SHAPES:
        r = math.sqrt(area / _area_k(s))
        t = scenes.coverage(s, r, dx, dy)
        errs[s] = float(np.abs(obs - t).sum() + max(0.0, area - float(t.sum()))) / area
    return errs


# ---------------------------------------------------------------- track / motion

def track(video):
    return [analyse_frame(f) for f in video]


def coherence(frames, size):
    """(coherent_object: bool, reasons: list of str) - parts (a) and (b)."""
    why = []
    bad = [i for i, f in enumerate(frames) if not f["ok"]]
    if bad:
        why.append("no single object in %d/%d frames (first %d)" % (len(bad), len(frames), bad[0]))
        return False, why
    lim = JUMP_FRAC * size
    for i in range(1, len(frames)):
        a, b = frames[i - 1], frames[i]
        r = b["area"] / a["area"]
        if r > AREA_JUMP or r < 1.0 / AREA_JUMP:
            why.append("area jumps x%.2f at frame %d" % (r, i))
        if np.sqrt(((b["fg"] - a["fg"]) ** 2).sum()) > COLOUR_JUMP:
            why.append("colour jumps at frame %d" % i)
        if math.hypot(b["cx"] - a["cx"], b["cy"] - a["cy"]) > lim:
            why.append("centroid jumps at frame %d" % i)
    return not why, why


def motion_class(cx, cy):
    """bounce / slide_right / slide_left / fall / still from a centroid track."""
    rx, ry = np.ptp(cx), np.ptp(cy)
    if max(rx, ry) < STILL_PX:
        return "still"
    vx, vy = np.diff(cx), np.diff(cy)
    sx = np.sign(vx[np.abs(vx) > 0.3])
    sy = np.sign(vy[np.abs(vy) > 0.3])
    flips_x = int((sx[1:] != sx[:-1]).sum()) if sx.size > 1 else 0
    if ry < 0.25 * rx and flips_x == 0 and rx >= MOVE_PX:
        return "slide_right" if cx[-1] > cx[0] else "slide_left"
    if rx < 0.25 * ry and sy.size and sy[0] > 0:
        return "fall"
    return "bounce"


def wall_hits(cx, cy, bboxes, W, H, fps):
    """Wall hit times (s) from a centroid track."""
    T = len(cx)
    bb = np.asarray(bboxes, np.float64)
    ev = []
    for axis, p, lo_edge, hi_edge, lim in ((0, np.asarray(cx), bb[:, 0], bb[:, 2], W),
                                           (1, np.asarray(cy), bb[:, 1], bb[:, 3], H)):
        v = np.diff(p)                      # v[k] = p[k+1] - p[k]
        for k in range(1, T - 1):
            vin, vout = v[k - 1], v[k]
            for sgn in (1.0, -1.0):         # +1: towards the high wall (right / bottom)
                if sgn * vin < V_MIN or sgn * vout > 0.25 * abs(vin) and sgn * vout > 0.25:
                    continue
                margin = 1.5 + WALL_SLACK * max(W, H) + max(abs(vin), abs(vout))
                gap = (lim - hi_edge[k]) if sgn > 0 else lo_edge[k]
                if gap > margin:
                    continue
                # sub-frame time: crossing of the lines through the two
                # frames before and the two after k when both lie on the
                # approach / the rebound; else from k-1, k, k+1 alone,
                # taking the speeds before and after as equal
                t = float(k)
                if sgn * vout < -0.25:
                    a1 = p[k - 1] - p[k - 2] if k >= 2 else 0.0
                    a2 = p[k + 2] - p[k + 1] if k + 2 < T else 0.0
                    if sgn * a1 > 0.25 and sgn * a2 < -0.25:
                        # p = p[k-1] + a1 (t - (k-1)) = p[k+1] + a2 (t - (k+1))
                        t = (p[k + 1] - p[k - 1] + a1 * (k - 1) - a2 * (k + 1)) / (a1 - a2)
                    else:
                        s_in, s_out = sgn * vin, -sgn * vout
                        # k before the hit: wall at p_k + sgn*g, g + (g + s_out... )
                        ta = k + 0.5 * (1.0 - s_out / s_in) if s_in > s_out else float(k)
                        tb = k - 0.5 * (1.0 - s_in / s_out) if s_out > s_in else float(k)
                        t = ta if s_in > s_out else tb
                    t = min(max(t, k - 1.0), k + 1.0)
                elif k >= 2 and sgn * v[k - 2] > 0:
                    # comes to rest against the wall: reached at the earlier speed
                    t = (k - 1) + min(1.0, max(0.0, (p[k] - p[k - 1]) / v[k - 2]))
                ev.append(t)
    ev.sort()
    merged = []
    for t in ev:
        if merged and t - merged[-1][-1] < 0.5:
            merged[-1].append(t)
        else:
            merged.append([t])
    return [float(np.mean(g)) / fps for g in merged]


# ---------------------------------------------------------------- audio

def onsets(audio, sr):
    """(onset times s, strong flags) of an audio signal (see module doc)."""
    x = np.asarray(audio, np.float64)
    win, hop = max(1, int(round(ONSET_WIN_S * sr))), max(1, int(round(ONSET_HOP_S * sr)))
    if x.size < win:
        return np.zeros(0), np.zeros(0, bool)
    n = 1 + (x.size - win) // hop
    c = np.concatenate([[0.0], np.cumsum(x * x)])
    starts = np.arange(n) * hop
    e = (c[starts + win] - c[starts]) / win
    peak = e.max()
    if peak <= ONSET_ABS_FLOOR:
        return np.zeros(0), np.zeros(0, bool)
    floor = max(ONSET_ABS_FLOOR, peak * 10 ** (-ONSET_FLOOR_DB / 10))
    b0, b1 = 4, 12                           # baseline: 4..12 hops before
    cs = np.concatenate([[0.0], np.cumsum(e)])
    idx = np.arange(n)
    lo, hi = np.clip(idx - b1, 0, n), np.clip(idx - b0, 0, n)
    base = (cs[hi] - cs[lo]) / np.maximum(hi - lo, 1)
    # a rise needs a baseline of at least 4 windows: sound already playing
    # when the clip starts is not an onset
    cand = np.flatnonzero((e >= floor) & (e >= ONSET_RISE * base + 1e-12) & (hi - lo >= 4))
    gap = int(round(ONSET_GAP_S / ONSET_HOP_S))
    out, last = [], -10 ** 9
    for k in cand:
        if k - last > gap:
            out.append(k)
        last = k if k - last > gap else last
    ax = np.abs(x)
    times, peaks = [], []
    for k in out:
        s = starts[k]
        seg = ax[s:s + int(0.03 * sr)]
        # onset: the first sample of the window above a tenth of its peak
        p = float(seg.max()) if seg.size else 0.0
        w = ax[s:s + win]
        j = int(np.argmax(w >= 0.1 * w.max())) if w.size and w.max() > 0 else 0
        times.append((s + j) / sr)
        peaks.append(p)
    peaks = np.array(peaks)
    strong = peaks >= STRONG_FRAC * peaks.max() if peaks.size else np.zeros(0, bool)
    return np.array(times), strong


def match(a, b, tol):
    """One-to-one matches between sorted time lists a and b within tol,
    closest pairs first. Returns the number matched and the set of matched
    indices of b."""
    pairs = sorted((abs(x - y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)
                   if abs(x - y) <= tol)
    ua, ub = set(), set()
    for _, i, j in pairs:
        if i not in ua and j not in ub:
            ua.add(i)
            ub.add(j)
    return len(ua), ub


# ---------------------------------------------------------------- one clip

def evaluate_clip(video, fps, audio, sr, expected):
    """Score one clip. expected: dict(colour, shape, background, motion)
    from captions.parse(); audio may be None (no audio stream)."""
    T, H, W, _ = video.shape
    frames = track(video)
    size = max(H, W)
    res = {"frames": T, "width": W, "height": H, "fps": fps}
    found = [f for f in frames if "fg" in f and "area" in f and f["ok"]]
    obj_ok, why = coherence(frames, size)
    # how broken an incoherent clip is: frames with specks or a split object
    res["frames_without_object"] = sum(not f["ok"] for f in frames)
    if found:
        res["colour"] = nearest_colour(np.median(np.stack([f["fg"] for f in found]), 0))
        res["background"] = nearest_background(np.median(np.stack([f["bg"] for f in frames]), 0))
        clear = [f for f in found if f["bbox"][0] >= 2 and f["bbox"][1] >= 2
                 and f["bbox"][2] <= W - 2 and f["bbox"][3] <= H - 2] or found
        step = max(1, len(clear) // 12)
        errs = [shape_errors(f) for f in clear[::step]]
        med = {s: float(np.median([e[s] for e in errs])) for s in captions.SHAPES}
        res["shape"] = min(med, key=med.get)
        res["shape_err"] = {s: round(v, 3) for s, v in med.items()}
    else:
        res["colour"] = res["shape"] = res["background"] = None
    res["colour_ok"] = res["colour"] == expected["colour"]
    res["shape_ok"] = res["shape"] == expected["shape"]
    res["background_ok"] = res["background"] == expected["background"]
    events = []
    if obj_ok:
        cx = np.array([f["cx"] for f in frames])
        cy = np.array([f["cy"] for f in frames])
        rng = max(np.ptp(cx), np.ptp(cy))
        res["motion"] = motion_class(cx, cy)
        if expected["motion"] == "still":
            moves_ok = rng < STILL_PX
        else:
            moves_ok = rng >= MOVE_PX
        if not moves_ok:
            why.append("centroid range %.1f px for a '%s' prompt" % (rng, expected["motion"]))
        res["coherent"] = bool(moves_ok)
        events = wall_hits(cx, cy, [f["bbox"] for f in frames], W, H, fps)
    else:
        res["motion"] = None
        res["coherent"] = False
    res["motion_ok"] = res["motion"] == expected["motion"]
    res["why"] = why
    res["video_hits"] = [round(t, 4) for t in events]
    if audio is not None and len(audio):
        on, strong = onsets(audio, sr)
    else:
        on, strong = np.zeros(0), np.zeros(0, bool)
    res["onsets"] = [round(float(t), 4) for t in on]
    tol = 1.0 / fps + 1e-9
    if obj_ok:
        m, used = match(events, list(on), tol)
        extra = sum(1 for j in range(len(on)) if strong[j] and j not in used)
        res["sync_matched"], res["sync_expected"] = m, len(events) + extra
    else:
        ns = int(strong.sum())
        res["sync_matched"] = 0
        res["sync_expected"] = max(1, ns) if expected["motion"] in IMPACT_MOTIONS else ns
    return res


def summarise(results):
    """Aggregate per-clip results -> dict of the headline numbers."""
    n = len(results)
    if n == 0:
        return {"n": 0}
    exp = sum(r["sync_expected"] for r in results)
    mat = sum(r["sync_matched"] for r in results)
    return {
        "n": n,
        "colour_acc": sum(r["colour_ok"] for r in results) / n,
        "shape_acc": sum(r["shape_ok"] for r in results) / n,
        "coherent": sum(r["coherent"] for r in results) / n,
        "motion_acc": sum(r["motion_ok"] for r in results) / n,
        "background_acc": sum(r["background_ok"] for r in results) / n,
        "sync_1f": mat / exp if exp else float("nan"),
        "sync_matched": mat, "sync_expected": exp,
        "frames_without_object": sum(r["frames_without_object"] for r in results),
        "frames_total": sum(r["frames"] for r in results),
        "clips_without_object": sum(r["frames_without_object"] > 0 for r in results),
    }
