"""scenes.py - scene sampler, analytic motion and the numpy rasteriser.

Coordinates: physics runs in frame units (the frame is [0,1] x [0,1], x to
the right, y down), so a scene renders at any size; ground truth is given in
pixels of the rendered size, where pixel (i, j) covers [j, j+1] x [i, i+1]
and its centre is (j + 0.5, i + 0.5). An object's "centre" is its area
centroid; its bounding box is tight around the exact (un-antialiased) shape.

Motions (all analytic, so impact times are exact rather than frame-quantised):
  bounce       constant velocity, elastic reflection at the four borders;
               one impact per wall contact (speed = normal speed)
  slide_right  constant velocity left to right, never reaches a wall; silent
  slide_left   the same, right to left
  fall         gravity from near the top, restitution 0.7 on the floor, rests
               once the rebound speed drops below REST_SPEED; impacts on the
               floor (speed = downward speed at contact)
  still        does not move; silent

Rendering: each pixel's coverage comes from signed distances to the shape's
edges, a linear ramp one pixel wide (exact for axis-aligned edges, close
elsewhere): circle = ramp of distance to the rim, convex polygon = product
of its edges' ramps, star = sum of five convex kites. Only a crop around the
object is evaluated, all frames at once.
"""
import math

import numpy as np

from captions import BACKGROUNDS, COLOURS

RESTITUTION = 0.7
REST_SPEED = 0.12          # frame units / s: slower rebounds come to rest
CORNER_MERGE_S = 0.5e-3    # x- and y-wall contacts this close are one impact


# ---------------------------------------------------------------- shapes

def _regular(n, radius, phase):
    a = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.sin(a), -radius * np.cos(a)], 1)


def shape_parts(shape, r):
    """('circle', r) or ('polys', [convex polygons, each [k, 2], clockwise
    on screen]) centred on the area centroid, in the units of r."""
    if shape == "circle":
        return "circle", r
    if shape == "square":
        s = 0.85 * r
        return "polys", [np.array([[-s, -s], [s, -s], [s, s], [-s, s]])]
    if shape == "diamond":
        return "polys", [_regular(4, 1.15 * r, 0.0)]
    if shape == "triangle":
        return "polys", [_regular(3, 1.3 * r, 0.0)]
    if shape == "star":
        outer = _regular(5, 1.35 * r, 0.0)
        inner = _regular(5, 0.55 * r, math.pi / 5)
        kites = [np.array([[0.0, 0.0], inner[i - 1], outer[i], inner[i]])
                 for i in range(5)]
        return "polys", kites
    raise ValueError("unknown shape %r" % shape)


def shape_extent(shape, r):
    """(left, top, right, bottom) distances from the centre to the tight
    bounding box, all >= 0."""
    kind, parts = shape_parts(shape, r)
    if kind == "circle":
        return (r, r, r, r)
    v = np.concatenate(parts)
    return (-v[:, 0].min(), -v[:, 1].min(), v[:, 0].max(), v[:, 1].max())


def _edges(poly):
    """Unit outward normals n and offsets c (inside: n.p <= c): one per edge,
    plus a bevel plane touching each acute vertex away from the centre
    (interior angle < 80 degrees, e.g. triangle and star tips). The bevel
    leaves the shape unchanged but stops the ramps of the two edges from
    bleeding past a sharp tip."""
    a, b = poly, np.roll(poly, -1, axis=0)
    d = b - a
    n = np.stack([d[:, 1], -d[:, 0]], 1)           # outward for clockwise-on-screen
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    c = (n * a).sum(1)
    bn, bc = [], []
    for i in range(len(poly)):
        n_in, n_out = n[i - 1], n[i]               # edges meeting at vertex i
        if np.linalg.norm(poly[i]) < 1e-12 or n_in @ n_out > -math.cos(math.radians(80)):
            continue
        m = n_in + n_out
        m /= np.linalg.norm(m)
        bn.append(m)
        bc.append(m @ poly[i])
    if bn:
        n, c = np.concatenate([n, bn]), np.concatenate([c, bc])
    return n, c


def coverage(shape, r_px, dx, dy):
    """Fraction of each pixel covered; dx, dy: pixel centre minus object
    centre in pixels (broadcastable arrays)."""
    kind, parts = shape_parts(shape, r_px)
    if kind == "circle":
        return np.clip(r_px + 0.5 - np.sqrt(dx * dx + dy * dy), 0.0, 1.0)
    total = None
    for poly in parts:
        n, c = _edges(poly)
        cov = None
        for (nx, ny), ci in zip(n, c):
            w = abs(nx) + abs(ny)                   # pixel extent along n
            e = np.clip(0.5 - (nx * dx + ny * dy - ci) / w, 0.0, 1.0)
            cov = e if cov is None else cov * e
        total = cov if total is None else total + cov
    return np.minimum(total, 1.0)


# ---------------------------------------------------------------- motion

class Motion:
    """Analytic trajectory of the object centre in frame units.

    pos(t) -> (x, y) arrays; vel(t) -> (vx, vy); impacts: list of
    (time s, speed frame-units/s, wall) sorted by time, 0 < time < seconds.
    """

    def __init__(self, kind, seconds, lo, hi, **p):
        self.kind, self.seconds = kind, seconds
        self.lo, self.hi = np.asarray(lo, float), np.asarray(hi, float)
        self.p = p
        self.impacts = []
        if kind == "bounce":
            self._bounce_impacts()
        elif kind == "fall":
            self._fall_setup()

    # bounce: the unfolded coordinate u = x0 - lo + v t folded into [0, L]
    def _fold(self, axis, t):
        lo, L = self.lo[axis], self.hi[axis] - self.lo[axis]
        u = self.p["p0"][axis] - lo + self.p["v"][axis] * t
        m = np.mod(u, 2 * L)
        up = m <= L
        return lo + np.where(up, m, 2 * L - m), np.where(up, 1.0, -1.0) * self.p["v"][axis]

    def _bounce_impacts(self):
        hits = []
        for axis in (0, 1):
            v = self.p["v"][axis]
            if v == 0:
                continue
            lo, L = self.lo[axis], self.hi[axis] - self.lo[axis]
            u0 = self.p["p0"][axis] - lo
            # contacts where u = k L; t = (k L - u0) / v in (0, seconds)
            k_a, k_b = (u0 / L, (u0 + v * self.seconds) / L)
            for k in range(math.floor(min(k_a, k_b)) - 1, math.ceil(max(k_a, k_b)) + 2):
                t = (k * L - u0) / v
                if 0 < t < self.seconds:
                    names = ("left", "right") if axis == 0 else ("top", "bottom")
                    hits.append((t, abs(v), names[k % 2]))
        hits.sort()
        merged = []
        for h in hits:
            if merged and h[0] - merged[-1][0] < CORNER_MERGE_S:
                t0, s0, w0 = merged[-1]
                merged[-1] = (t0, math.hypot(s0, h[1]), w0 + "+" + h[2])
            else:
                merged.append(h)
        self.impacts = merged

    # fall: parabola to the floor, then rebounds with restitution
    def _fall_setup(self):
        g, y0, vy0 = self.p["g"], self.p["p0"][1], self.p["vy0"]
        floor = self.hi[1]
        t1 = (-vy0 + math.sqrt(vy0 * vy0 + 2 * g * (floor - y0))) / g
        starts, ups = [0.0], [None]    # segment start times, upward speed
        t, v = t1, vy0 + g * t1
        self.rest_time = math.inf
        while t < self.seconds:
            self.impacts.append((t, v, "floor"))
            u = RESTITUTION * v
            starts.append(t)
            if u < REST_SPEED:
                ups.append(0.0)
                self.rest_time = t
                break
            ups.append(u)
            t, v = t + 2 * u / g, u
        self.seg_start = np.array(starts)
        self.seg_up = np.array([0.0] + ups[1:])

    def pos(self, t):
        t = np.asarray(t, float)
        x0, y0 = self.p.get("p0", (0.5, 0.5))
        k = self.kind
        if k == "bounce":
            return self._fold(0, t)[0], self._fold(1, t)[0]
        if k in ("slide_right", "slide_left"):
            return x0 + self.p["vx"] * t, np.full_like(t, y0)
        if k == "still":
            return np.full_like(t, x0), np.full_like(t, y0)
        if k == "fall":
            g, floor = self.p["g"], self.hi[1]
            i = np.searchsorted(self.seg_start, t, side="right") - 1
            s = t - self.seg_start[i]
            y = np.where(i == 0, y0 + self.p["vy0"] * s + 0.5 * g * s * s,
                         floor - self.seg_up[i] * s + 0.5 * g * s * s)
            y = np.where((i > 0) & (self.seg_up[i] == 0), floor, y)
            return np.full_like(t, x0), np.minimum(y, floor)
        raise ValueError(k)

    def vel(self, t):
        t = np.asarray(t, float)
        k = self.kind
        if k == "bounce":
            return self._fold(0, t)[1], self._fold(1, t)[1]
        if k in ("slide_right", "slide_left"):
            return np.full_like(t, self.p["vx"]), np.zeros_like(t)
        if k == "still":
            return np.zeros_like(t), np.zeros_like(t)
        if k == "fall":
            g = self.p["g"]
            i = np.searchsorted(self.seg_start, t, side="right") - 1
            s = t - self.seg_start[i]
            vy = np.where(i == 0, self.p["vy0"] + g * s, -self.seg_up[i] + g * s)
            vy = np.where((i > 0) & (self.seg_up[i] == 0), 0.0, vy)
            return np.zeros_like(t), vy
        raise ValueError(k)


# ---------------------------------------------------------------- sampling

def sample_scene(rng, colour, shape, background, motion, seconds):
    """Draw the continuous parameters of a clip (size, start, velocity,
    gravity) for the given attributes. Uses rng; returns a dict."""
    # Version 4 (a smaller world for a small DiT that must learn it in hours
    # of CPU): 22-26 px at 128x128, 5-6 latent pixels across after
    # the VAE's 8x downsampling, and every motion starts from a narrow band
    # around the centre with one of a few speeds and headings. With v3's
    # 17-23 px objects anywhere at any heading, 22 500 DiT steps rendered
    # every shape as a blob that jumped between frames, on training captions
    # as much as on held-out ones (underfitting, not generalisation:
    # scripts/train/README.md, sitting 10).
    r = float(rng.uniform(0.17, 0.20))
    ext = shape_extent(shape, r)
    lo = (ext[0], ext[1])
    hi = (1.0 - ext[2], 1.0 - ext[3])
    span = (hi[0] - lo[0], hi[1] - lo[1])

    def inside(axis, a=0.02, b=0.98):
        return lo[axis] + span[axis] * float(rng.uniform(a, b))

    p = {}
    if motion == "bounce":
        # 0.5-0.6 frame/s (4-5 px a frame at 128 px and 16 fps) at 35 or 55
        # degrees off an axis: three to five wall hits in 3 s
        speed = float(rng.uniform(0.5, 0.6))
        ang = math.radians(float(rng.choice([35.0, 55.0])) + float(rng.uniform(-3, 3))
                           + 90 * int(rng.integers(4)))
        p = {"p0": (inside(0, 0.4, 0.6), inside(1, 0.4, 0.6)),
             "v": (speed * math.cos(ang), speed * math.sin(ang))}
    elif motion in ("slide_right", "slide_left"):
        a = lo[0] + span[0] * float(rng.uniform(0.0, 0.05))   # never touches a wall
        b = hi[0] - span[0] * float(rng.uniform(0.0, 0.05))
        a, b = max(a, lo[0] + 1e-3), min(b, hi[0] - 1e-3)
        if motion == "slide_left":
            a, b = b, a
        p = {"p0": (a, inside(1, 0.4, 0.6)), "vx": (b - a) / seconds}
    elif motion == "fall":
        # g 0.85-0.95 frame/s^2: the first floor hit about 1 s in, at most
        # ~8 px a frame
        p = {"p0": (inside(0, 0.4, 0.6), inside(1, 0.0, 0.1)),
             "vy0": float(rng.uniform(0.0, 0.05)), "g": float(rng.uniform(0.85, 0.95))}
    elif motion == "still":
        p = {"p0": (inside(0, 0.4, 0.6), inside(1, 0.4, 0.6))}
    else:
        raise ValueError("unknown motion %r" % motion)
    return {"colour": colour, "shape": shape, "background": background,
            "motion": motion, "seconds": seconds, "r": r, "extent": ext,
            "lo": lo, "hi": hi, "params": p}


def scene_motion(scene):
    return Motion(scene["motion"], scene["seconds"], scene["lo"], scene["hi"],
                  **scene["params"])


# ---------------------------------------------------------------- render

def ground_truth(scene, motion, size, fps):
    """Per-frame centre [T,2], bbox [T,4] (x0,y0,x1,y1) and velocity [T,2]
    in pixels (px/s); impact times (s), frames (nearest), speeds, walls."""
    T = int(round(scene["seconds"] * fps))
    t = np.arange(T) / fps
    x, y = motion.pos(t)
    vx, vy = motion.vel(t)
    centre = np.stack([x, y], 1) * size
    l, tp, r, b = scene["extent"]
    bbox = np.stack([x - l, y - tp, x + r, y + b], 1) * size
    imp = motion.impacts
    times = np.array([i[0] for i in imp], float)
    return {
        "centre": centre.astype(np.float32),
        "bbox": bbox.astype(np.float32),
        "velocity": (np.stack([vx, vy], 1) * size).astype(np.float32),
        "impact_times": times,
        "impact_frames": np.rint(times * fps).astype(np.int64),
        "impact_speeds": np.array([i[1] for i in imp], float),
        "impact_walls": [i[2] for i in imp],
    }


def render(scene, gt, size):
    """uint8 video [T, size, size, 3] from the per-frame centres in gt."""
    centre = gt["centre"].astype(np.float64)
    T = centre.shape[0]
    bg = np.array(BACKGROUNDS[scene["background"]], np.float32)
    fg = np.array(COLOURS[scene["colour"]], np.float32)
    video = np.empty((T, size, size, 3), np.uint8)
    video[:] = bg.astype(np.uint8)
    l, tp, r, b = (e * size for e in scene["extent"])
    cw = min(size, int(math.ceil(l + r)) + 3)
    ch = min(size, int(math.ceil(tp + b)) + 3)
    ox = np.clip(np.floor(centre[:, 0] - l).astype(np.int64) - 1, 0, size - cw)
    oy = np.clip(np.floor(centre[:, 1] - tp).astype(np.int64) - 1, 0, size - ch)
    jj, ii = np.arange(cw), np.arange(ch)
    dx = (ox[:, None] + jj[None, :] + 0.5 - centre[:, 0:1])[:, None, :]
    dy = (oy[:, None] + ii[None, :] + 0.5 - centre[:, 1:2])[:, :, None]
    a = coverage(scene["shape"], scene["r"] * size,
                 dx.astype(np.float32), dy.astype(np.float32))
    a = np.broadcast_to(a, (T, ch, cw))
    pix = np.rint(bg + a[..., None] * (fg - bg)).astype(np.uint8)
    tt = np.arange(T)[:, None, None]
    yy = (oy[:, None] + ii[None, :])[:, :, None]
    xx = (ox[:, None] + jj[None, :])[:, None, :]
    video[tt, yy, xx] = pix
    return video
