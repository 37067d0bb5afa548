"""Augmentation, written with numpy + PIL only (no torchvision).

Geometry: the bay quad is jittered (shift, scale, aspect, small rotation, independent corner/perspective
jitter), its corners are permuted for a random flip / 180-degree rotation, and the canvas is resampled
through the homography output-rectangle -> quad with bilinear interpolation (what the runtime's warp does).

Photometry: channel permutation, hue rotation, saturation, brightness, contrast, gamma, colour cast,
grayscale, soft shadows, painted lines, blur / low resolution, gaussian noise, JPEG, small cutout.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

from data import OUT_H, OUT_W

# corner permutations (TL, TR, BR, BL) for identity, horizontal flip, vertical flip, 180 degrees
ORIENT = np.array([[0, 1, 2, 3], [1, 0, 3, 2], [3, 2, 1, 0], [2, 3, 0, 1]])
OUT_RECT = np.array([[0, 0], [OUT_W, 0], [OUT_W, OUT_H], [0, OUT_H]], np.float64)


def homography(src, dst):
    """3x3 H with H @ [src,1] ~ [dst,1] for 4 point pairs."""
    a, b = [], []
    for (x, y), (u, v) in zip(src, dst):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    h = np.linalg.solve(np.array(a, np.float64), np.array(b, np.float64))
    return np.append(h, 1.0).reshape(3, 3)


def homography_batch(src, dst):
    """src [4, 2] fixed, dst [B, 4, 2] -> [B, 3, 3]."""
    b = len(dst)
    a = np.zeros((b, 8, 8))
    x, y = src[:, 0], src[:, 1]
    u, v = dst[:, :, 0], dst[:, :, 1]
    a[:, 0::2, 0] = x; a[:, 0::2, 1] = y; a[:, 0::2, 2] = 1
    a[:, 1::2, 3] = x; a[:, 1::2, 4] = y; a[:, 1::2, 5] = 1
    a[:, 0::2, 6] = -u * x; a[:, 0::2, 7] = -u * y
    a[:, 1::2, 6] = -v * x; a[:, 1::2, 7] = -v * y
    rhs = np.empty((b, 8)); rhs[:, 0::2] = u; rhs[:, 1::2] = v
    h = np.linalg.solve(a, rhs[..., None])[..., 0]
    return np.concatenate([h, np.ones((b, 1))], 1).reshape(b, 3, 3)


_GY, _GX = np.mgrid[0:OUT_H, 0:OUT_W].astype(np.float64) + 0.5
_GRID = np.stack([_GX.ravel(), _GY.ravel(), np.ones(OUT_H * OUT_W)])


def warp_batch(canvases, quads):
    """Sample quads [B, 4, 2] (TL, TR, BR, BL) of canvases [B, H, W, 3] uint8 -> float32 [B, OUT_H, OUT_W, 3]."""
    b = len(quads)
    hs = homography_batch(OUT_RECT, np.asarray(quads, np.float64))  # [B, 3, 3]
    p = hs @ _GRID  # [B, 3, P]
    x = p[:, 0] / p[:, 2] - 0.5
    y = p[:, 1] / p[:, 2] - 0.5
    ch, cw = canvases.shape[1:3]
    x = np.clip(x, 0, cw - 1.001).astype(np.float32)
    y = np.clip(y, 0, ch - 1.001).astype(np.float32)
    x0 = x.astype(np.int32)
    y0 = y.astype(np.int32)
    fx = (x - x0)[..., None]
    fy = (y - y0)[..., None]
    flat = canvases.reshape(-1, 3)
    i00 = (np.arange(b, dtype=np.int32)[:, None] * (ch * cw) + y0 * cw + x0).ravel()
    g = lambda off: np.take(flat, i00 + off, axis=0).reshape(b, -1, 3).astype(np.float32)
    top = g(0) * (1 - fx) + g(1) * fx
    bot = g(cw) * (1 - fx) + g(cw + 1) * fx
    v = top * (1 - fy) + bot * fy
    return (v.reshape(b, OUT_H, OUT_W, 3) * np.float32(1 / 255.0)).astype(np.float32)


def warp(canvas, quad):
    return warp_batch(canvas[None], np.asarray(quad)[None])[0]


def jitter_quad(rng, quad, strength=1.0, kind="video"):
    q = np.asarray(quad, np.float64)
    c = q.mean(0)
    w = np.linalg.norm(q[1] - q[0])
    h = np.linalg.norm(q[3] - q[0])
    s = strength
    # manifest patches have no real context (reflect padding): zoom out less
    lo = 0.93 if kind == "manifest" else 0.85
    scale = np.exp(rng.uniform(np.log(lo), np.log(1.15)) * min(s, 1.0))
    aspect = np.exp(rng.uniform(-0.12, 0.12) * s)
    ang = np.deg2rad(rng.uniform(-7, 7) * s)
    shift = np.array([rng.uniform(-0.08, 0.08) * w, rng.uniform(-0.10, 0.10) * h]) * s
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    off = (q - c) * np.array([scale * aspect, scale / aspect])
    corners = c + shift + off @ rot.T
    corners += rng.uniform(-0.06, 0.06, size=(4, 2)) * np.array([w, h]) * s
    return corners[ORIENT[rng.integers(4)]]


def _gauss_kernel(sigma):
    r = max(1, int(np.ceil(2.5 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    return k / k.sum()


def _sep_blur(img, sigma):
    k = _gauss_kernel(sigma)
    r = len(k) // 2
    p = np.pad(img, ((r, r), (r, r), (0, 0)), mode="edge")
    t = sum(k[i] * p[:, i : i + img.shape[1]] for i in range(len(k)))
    return sum(k[i] * t[i : i + img.shape[0]] for i in range(len(k)))


def _hue_rotate(img, theta):
    # rotation about the grey axis (YIQ-like), keeps luminance roughly constant
    cos, sin = np.cos(theta), np.sin(theta)
    t_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    rot = np.array([[1, 0, 0], [0, cos, -sin], [0, sin, cos]])
    m = np.linalg.inv(t_yiq) @ rot @ t_yiq
    return img @ m.T.astype(np.float32)


def photometric(rng, img):
    """img float32 [H, W, 3] in [0, 1] -> augmented copy."""
    x = img
    if rng.random() < 0.5:
        x = x[:, :, rng.permutation(3)]
    if rng.random() < 0.6:
        x = _hue_rotate(x, rng.uniform(-0.6, 0.6))
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)
    if rng.random() < 0.15:
        x = np.repeat(gray[:, :, None], 3, axis=2)
    else:
        sat = rng.uniform(0.3, 1.7)
        x = gray[:, :, None] + (x - gray[:, :, None]) * sat
    # brightness / contrast / gamma / colour cast
    x = x * rng.uniform(0.55, 1.45)
    m = x.mean()
    x = m + (x - m) * rng.uniform(0.5, 1.5)
    x = np.clip(x, 0, 1) ** rng.uniform(0.7, 1.45)
    x = x * rng.uniform(0.88, 1.12, size=3) + rng.uniform(-0.05, 0.05, size=3)
    # soft shadow over a half plane (buildings, trees, lamp posts)
    if rng.random() < 0.25:
        yy, xx = np.mgrid[0:OUT_H, 0:OUT_W]
        a = rng.uniform(0, 2 * np.pi)
        d = (xx - rng.uniform(0, OUT_W)) * np.cos(a) + (yy - rng.uniform(0, OUT_H)) * np.sin(a)
        mask = 1 / (1 + np.exp(-d / rng.uniform(0.5, 4)))
        x = x * (1 - mask[:, :, None] * rng.uniform(0.3, 0.65))
    # painted lines (bay markings differ per lot): given to both classes alike
    if rng.random() < 0.3:
        col = np.array([1, 1, 1] if rng.random() < 0.6 else [0.95, 0.8, 0.2], np.float32) * rng.uniform(0.6, 1.0)
        for _ in range(rng.integers(1, 3)):
            t = rng.integers(1, 3)
            if rng.random() < 0.6:  # long side
                y0 = rng.choice([rng.integers(0, 4), OUT_H - t - rng.integers(0, 4)])
                x[y0 : y0 + t] = 0.3 * x[y0 : y0 + t] + 0.7 * col
            else:
                x0 = rng.choice([rng.integers(0, 6), OUT_W - t - rng.integers(0, 6)])
                x[:, x0 : x0 + t] = 0.3 * x[:, x0 : x0 + t] + 0.7 * col
    # small cutout
    if rng.random() < 0.15:
        h, w = rng.integers(4, 11), rng.integers(6, 19)
        y0, x0 = rng.integers(0, OUT_H - h), rng.integers(0, OUT_W - w)
        x[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 1, size=3)
    x = np.clip(x, 0, 1).astype(np.float32)
    # optics: blur or low resolution
    r = rng.random()
    if r < 0.25:
        x = _sep_blur(x, rng.uniform(0.4, 1.3))
    elif r < 0.45:
        f = rng.uniform(1.4, 3.0)
        im = Image.fromarray((x * 255).astype(np.uint8))
        im = im.resize((max(8, int(OUT_W / f)), max(4, int(OUT_H / f))), Image.BILINEAR, reducing_gap=2.0)
        x = np.asarray(im.resize((OUT_W, OUT_H), Image.BILINEAR), np.float32) / 255.0
    if rng.random() < 0.5:
        x = x + rng.normal(0, rng.uniform(0.005, 0.045), size=x.shape).astype(np.float32)
    x = np.clip(x, 0, 1)
    if rng.random() < 0.3:
        buf = io.BytesIO()
        Image.fromarray((x * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(25, 90)))
        x = np.asarray(Image.open(buf), np.float32) / 255.0
    return x.astype(np.float32)


def make_batch(rng, src, idx, train=True):
    """-> float32 [B, 3, OUT_H, OUT_W] in [0, 1]."""
    idx = np.asarray(list(idx))
    if train:
        quads = np.stack([jitter_quad(rng, src.quad[i], kind=src.kind[i]) for i in idx])
    else:
        quads = src.quad[idx]
    imgs = warp_batch(src.canvas[idx], quads)
    if train:
        imgs = np.stack([photometric(rng, im) for im in imgs])
    return np.ascontiguousarray(imgs.transpose(0, 3, 1, 2))
