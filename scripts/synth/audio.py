"""audio.py - the sound of a clip: a short percussive tone at every impact,
silence (exact zeros) everywhere else. 16 kHz mono float32.

Each tone starts exactly at its impact time (sample n plays the tone at
n/sr - t_impact, so the onset is placed to a fraction of a sample, not to a
frame or a sample boundary): an exponentially decaying sine at the shape's
pitch (captions.PITCH) plus a brief decaying noise burst, TONE_S long with a
short cosine fade at the end. Its amplitude grows with the impact speed:
PEAK * min(1, speed / SPEED_REF) (speed in frame widths per second), never
below PEAK * MIN_LOUD for a real impact. Overlapping tones add; the sum is
clipped to [-1, 1].
"""
import numpy as np

from captions import PITCH

SR = 16000
TONE_S = 0.12
DECAY_S = 0.025
NOISE_S = 0.004
NOISE_GAIN = 0.25
FADE_S = 0.01
PEAK = 0.9
SPEED_REF = 1.2   # the fastest impacts (~1.15 frame/s, a fall) play near PEAK
MIN_LOUD = 0.05


def loudness(speed):
    return PEAK * min(1.0, max(MIN_LOUD, speed / SPEED_REF))


def tone(f, amp, dt, noise):
    """The tone at times dt (s, >= 0) after its onset; noise: same shape."""
    env = np.exp(-dt / DECAY_S)
    s = np.sin(2 * np.pi * f * dt) + NOISE_GAIN * noise * np.exp(-dt / NOISE_S)
    fade = np.clip((TONE_S - dt) / FADE_S, 0.0, 1.0)
    fade = 0.5 - 0.5 * np.cos(np.pi * fade)
    return (amp * env * fade * s).astype(np.float32)


def synth_audio(shape, impact_times, impact_speeds, seconds, rng, sr=SR):
    """float32 [round(seconds*sr)]; rng draws the noise bursts."""
    n = int(round(seconds * sr))
    out = np.zeros(n, np.float32)
    f = PITCH[shape]
    L = int(np.ceil(TONE_S * sr)) + 1
    for t, v in zip(impact_times, impact_speeds):
        n0 = int(np.ceil(t * sr))          # first sample at or after the impact
        idx = np.arange(n0, min(n, n0 + L))
        noise = rng.standard_normal(L).astype(np.float32)[:idx.size]
        if idx.size == 0:
            continue
        dt = idx / sr - t
        keep = dt < TONE_S
        out[idx[keep]] += tone(f, loudness(v), dt[keep], noise[keep])
    np.clip(out, -1.0, 1.0, out=out)
    return out


def onsets(audio, sr=SR, thresh=1e-4, min_gap_s=0.02):
    """A simple energy onset detector: the first sample of every run of
    sound (|x| above thresh) that follows at least min_gap_s of silence.
    Returns onset times in seconds."""
    loud = np.abs(audio) > thresh
    idx = np.flatnonzero(loud)
    if idx.size == 0:
        return np.zeros(0)
    gap = int(min_gap_s * sr)
    starts = idx[np.concatenate([[True], np.diff(idx) > gap])]
    return starts / sr
