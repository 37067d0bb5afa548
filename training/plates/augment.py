"""Training samples: geometric + photometric augmentation of the Romanian frames, synthetic plate-like
rectangles, and CenterNet targets. Every sample k is drawn from np.random.default_rng([seed, k]), so the
data stream is the same whatever the number of loader workers."""
import io

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from common import STRIDE

LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
DIGITS = "0123456789"
_FONTS = {}


def font(size):
    # Pillow's built-in scalable font (Aileron, bundled with Pillow, SIL OFL): no external font files
    size = int(size)
    if size not in _FONTS:
        _FONTS[size] = ImageFont.load_default(size=size)
    return _FONTS[size]


def plate_text(rng, style):
    L = lambda n: "".join(rng.choice(list(LETTERS), n))  # noqa: E731
    D = lambda n: "".join(rng.choice(list(DIGITS), n))  # noqa: E731
    if style == "eu":
        return rng.choice([f"{L(2)} {D(2)} {L(3)}", f"{L(2)}-{D(3)}-{L(2)}", f"{L(1)} {D(3)} {L(2)}",
                           f"{L(2)} {D(4)}-{L(2)}", f"{L(3)}-{D(3)}"])
    if style == "br":
        return rng.choice([f"{L(3)}-{D(4)}", f"{L(3)} {D(4)}", f"{L(3)}{D(1)}{L(1)}{D(2)}"])
    if style == "us":
        return rng.choice([f"{D(1)}{L(3)}{D(3)}", f"{L(3)} {D(4)}", f"{L(3)}-{D(3)}", f"{D(3)} {L(3)}",
                           f"{L(2)}{D(1)} {L(1)}{D(2)}"])
    return rng.choice([f"{L(2)} {D(4)}", f"{D(2)} {L(3)} {D(2)}", f"{L(3)} {D(3)}", f"{D(4)} {L(2)}"])


def draw_plate(rng):
    """A procedurally drawn plate-like rectangle (RGB, ~60 px high) in one of several national styles:
    EU (white/yellow, blue band), US (2:1, colourful background, coloured state text), BR old (grey, dark
    characters), generic (light or dark backgrounds)."""
    style = rng.choice(["eu", "eu", "us", "us", "br", "generic"])
    H = 60
    aspect = {"eu": rng.uniform(3.8, 5.0), "us": rng.uniform(1.8, 2.2), "br": rng.uniform(2.6, 3.3),
              "generic": rng.uniform(2.0, 5.0)}[style]
    W = int(H * aspect)
    dark = (int(rng.integers(0, 60)),) * 3
    if style == "eu":
        bg = tuple(int(v) for v in (rng.choice([[245, 245, 240], [250, 210, 30]]) + rng.integers(-25, 6, 3)))
    elif style == "br":
        g = int(rng.integers(120, 215))
        bg = (g, g, g + int(rng.integers(-10, 10)))
    elif style == "us":
        bg = tuple(int(v) for v in rng.integers(170, 256, 3))
    else:
        if rng.random() < 0.25:  # light text on dark plate
            bg = tuple(int(v) for v in rng.integers(0, 90, 3))
            dark = tuple(int(v) for v in rng.integers(180, 256, 3))
        else:
            bg = tuple(int(v) for v in rng.integers(150, 256, 3))
    im = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(im)
    x0 = 0
    if style == "us":
        # colourful background: a few soft bands / blobs, coloured characters, small state name + slogan
        for _ in range(int(rng.integers(1, 4))):
            c = tuple(int(v) for v in rng.integers(60, 256, 3))
            if rng.random() < 0.5:
                y = int(rng.integers(0, H))
                d.rectangle([0, y, W, y + int(rng.integers(3, 15))], fill=c)
            else:
                cx, cy, r = int(rng.integers(0, W)), int(rng.integers(0, H)), int(rng.integers(8, 40))
                d.ellipse([cx - r, cy - r // 2, cx + r, cy + r // 2], fill=c)
        im = im.filter(ImageFilter.GaussianBlur(2))
        d = ImageDraw.Draw(im)
        if rng.random() < 0.5:
            dark = tuple(int(v) for v in rng.choice([[20, 30, 120], [140, 20, 20], [10, 80, 30], [30, 30, 30]]))
        sc = tuple(int(v) for v in rng.integers(0, 200, 3))
        d.text((W / 2, 2), "".join(rng.choice(list(LETTERS), int(rng.integers(4, 11)))), fill=sc,
               font=font(11), anchor="ma")
        if rng.random() < 0.6:
            d.text((W / 2, H - 3), "".join(rng.choice(list(LETTERS.lower()), int(rng.integers(6, 16)))),
                   fill=sc, font=font(8), anchor="md")
    elif style == "eu" and rng.random() < 0.85:
        bw = int(W * rng.uniform(0.07, 0.1))
        d.rectangle([0, 0, bw, H], fill=(20, 50, 160))
        d.text((bw / 2, H * 0.8), rng.choice(list("DFIHRORSKPLNLBEAT")), fill=(240, 240, 240), font=font(12),
               anchor="mm")
        x0 = bw
    elif style == "br" and rng.random() < 0.7:
        d.text((W / 2, 2), "".join(rng.choice(list(LETTERS), int(rng.integers(2, 3)))) + " " +
               "".join(rng.choice(list(LETTERS.lower()), int(rng.integers(5, 10)))), fill=dark, font=font(9),
               anchor="ma")
    text = plate_text(rng, style)
    fs = int(H * rng.uniform(0.55, 0.75))
    f = font(fs)
    stroke = int(rng.integers(0, 3))
    tw = d.textlength(text, font=f)
    avail = W - x0 - 8
    if tw > avail:  # squeeze: draw on a wide strip and resize
        strip = Image.new("RGBA", (int(tw) + 8, H), (0, 0, 0, 0))
        ImageDraw.Draw(strip).text((4, H / 2 + 2), text, fill=dark + (255,), font=f, anchor="lm",
                                   stroke_width=stroke, stroke_fill=dark + (255,))
        strip = strip.resize((int(avail), H), Image.BILINEAR)
        im.paste(strip, (x0 + 4, 0), strip)
    else:
        d.text((x0 + (W - x0) / 2, H / 2 + 2), text, fill=dark, font=f, anchor="mm", stroke_width=stroke,
               stroke_fill=dark)
    if rng.random() < 0.7:
        d.rectangle([0, 0, W - 1, H - 1], outline=dark if rng.random() < 0.6 else (200, 200, 200),
                    width=int(rng.integers(1, 4)))
    if rng.random() < 0.3:  # screws / holes
        for sx in (W * 0.25, W * 0.75):
            d.ellipse([sx - 2, 3, sx + 2, 7], fill=(120, 120, 120))
    return im


def distractor_text(rng):
    """Text that is not a plate: camera timestamps, dates, shop and street signs, slogans."""
    D = lambda n: "".join(rng.choice(list(DIGITS), n))  # noqa: E731
    L = lambda n: "".join(rng.choice(list(LETTERS), n))  # noqa: E731
    k = int(rng.integers(0, 6))
    if k == 0:
        return f"20{D(2)}-{D(2)}-{D(2)} {D(2)}:{D(2)}:{D(2)}"
    if k == 1:
        return f"20{D(5)}" if rng.random() < 0.5 else f"{D(2)}/{D(2)}/20{D(2)}"
    if k == 2:
        return f"CAM {D(2)}" if rng.random() < 0.5 else f"{L(int(rng.integers(3, 8)))} {D(int(rng.integers(1, 4)))}"
    if k == 3:
        return " ".join(L(int(rng.integers(2, 9))) for _ in range(int(rng.integers(1, 4))))
    if k == 4:
        return L(int(rng.integers(4, 9))).capitalize() + " " + "".join(rng.choice(list(LETTERS.lower()), int(rng.integers(3, 10))))
    return f"{D(int(rng.integers(2, 5)))} {L(int(rng.integers(3, 10)))}"


def paste_distractors(canvas, rng, boxes):
    """Draw 1-3 texts that are not plates (no plate background, or a sign much wider than a plate) where
    they do not cover a plate, as negatives: the net must not propose every piece of text (a camera's
    timestamp overlay, a shop sign) as a plate."""
    C = canvas.size[0]
    d = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        text = distractor_text(rng)
        fs = int(np.exp(rng.uniform(np.log(7), np.log(40))))
        f = font(fs)
        tw = d.textlength(text, font=f)
        if tw > 0.9 * C:
            continue
        x, y = float(rng.uniform(-tw * 0.2, C - tw * 0.8)), float(rng.uniform(0, C - fs))
        box = np.array([x - 4, y - 4, x + tw + 4, y + fs * 1.3 + 4], np.float32)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in boxes):
            continue
        light = rng.random() < 0.5
        fg = tuple(int(v) for v in (rng.integers(200, 256, 3) if light else rng.integers(0, 60, 3)))
        if rng.random() < 0.3:  # on a sign much wider than a plate
            pad = fs * 0.3
            bg = tuple(int(v) for v in (rng.integers(0, 80, 3) if light else rng.integers(170, 256, 3)))
            d.rectangle([x - pad, y - pad, x + tw + pad, y + fs * 1.2 + pad], fill=bg)
        stroke = int(rng.integers(0, 2)) if fs > 10 else 0
        d.text((x, y), text, fill=fg, font=f, stroke_width=stroke, stroke_fill=(0, 0, 0) if light else (255, 255, 255))


def paste_synthetic(canvas, rng, boxes):
    """Paste 1-3 synthetic plates (width log-uniform 10..420 px) on the PIL canvas; appends their boxes."""
    C = canvas.size[0]
    for _ in range(int(rng.integers(1, 4))):
        p = draw_plate(rng)
        w = float(np.exp(rng.uniform(np.log(10), np.log(420))))
        h = w * p.size[1] / p.size[0] * np.exp(rng.uniform(-0.15, 0.15))
        w, h = max(4, int(round(w))), max(3, int(round(h)))
        p = p.resize((w, h), Image.LANCZOS if w < p.size[0] else Image.BILINEAR)
        # lighting: darken / wash out, so synthetic plates are not always the brightest thing in the frame
        a = np.asarray(p, np.float32) * rng.uniform(0.35, 1.05) + rng.uniform(-20, 25)
        p = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
        mask = Image.new("L", (w, h), 255)
        ang = rng.uniform(-6, 6)
        if abs(ang) > 0.5:
            p = p.rotate(ang, Image.BILINEAR, expand=True)
            mask = mask.rotate(ang, Image.BILINEAR, expand=True)
        pw, ph = p.size
        x = int(rng.integers(-pw // 4, C - pw * 3 // 4 + 1)) if pw < C else int(rng.integers(C // 2 - pw, 1))
        y = int(rng.integers(0, max(1, C - ph)))
        b = np.array([x, y, x + pw, y + ph], np.float32)
        # do not cover (most of) an existing plate
        if len(boxes) and any(_overlap(b, q) > 0.1 for q in boxes):
            continue
        canvas.paste(p, (x, y), mask)
        boxes.append(b)


def _overlap(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / max(1e-6, min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1])))


def photometric(img, rng):
    """PIL RGB -> float32 HxWx3 in [0,1] with colour/hue/saturation/brightness/contrast/gamma jitter,
    grayscale, blur, noise, JPEG."""
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.6)))
    if rng.random() < 0.3:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(20, 90)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    x = np.asarray(img, np.float32) / 255.0
    if rng.random() < 0.8:  # hue rotation in YIQ + saturation
        th = rng.uniform(-0.4, 0.4) if rng.random() < 0.75 else rng.uniform(-np.pi, np.pi)
        sat = rng.uniform(0.3, 1.6)
        c, s = np.cos(th) * sat, np.sin(th) * sat
        T = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
        R = np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float32)
        M = np.linalg.inv(T) @ R @ T
        x = x @ M.T.astype(np.float32)
    if rng.random() < 0.5:  # white balance
        x = x * rng.uniform(0.8, 1.2, 3).astype(np.float32)
    if rng.random() < 0.15:
        x = np.repeat((x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None], 3, 2)
    m = x.mean()
    x = (x - m) * rng.uniform(0.5, 1.5) + m * rng.uniform(0.5, 1.4) + rng.uniform(-0.08, 0.08)
    x = np.clip(x, 0, 1)
    if rng.random() < 0.5:
        x = x ** np.float32(np.exp(rng.uniform(-0.6, 0.6)))
    if rng.random() < 0.3:
        x = x + rng.normal(0, rng.uniform(0.005, 0.05), x.shape).astype(np.float32)
    return np.clip(x, 0, 1).astype(np.float32)


def targets(boxes, ignore, C):
    """CenterNet targets on the stride-4 grid: Gaussian heatmap (peak 1 at the centre cell), log-size maps
    with weights (the Gaussian value where >= 0.4), and a loss mask (0 around ignored boxes)."""
    g = C // STRIDE
    hm = np.zeros((g, g), np.float32)
    sz = np.zeros((2, g, g), np.float32)
    wt = np.zeros((g, g), np.float32)
    valid = np.ones((g, g), np.float32)
    yy, xx = np.mgrid[0:g, 0:g].astype(np.float32)
    for b in ignore:
        x0, y0, x1, y1 = (np.array(b) / STRIDE)
        valid[max(0, int(y0) - 1):max(0, int(np.ceil(y1)) + 1), max(0, int(x0) - 1):max(0, int(np.ceil(x1)) + 1)] = 0
    for b in boxes:
        w, h = b[2] - b[0], b[3] - b[1]
        cx, cy = (b[0] + b[2]) / 2 / STRIDE, (b[1] + b[3]) / 2 / STRIDE
        ix, iy = int(np.floor(cx)), int(np.floor(cy))
        if not (0 <= ix < g and 0 <= iy < g):
            continue
        sx, sy = max(0.7, w / STRIDE / 6), max(0.7, h / STRIDE / 6)
        gau = np.exp(-((xx + 0.5 - cx) ** 2) / (2 * sx * sx) - ((yy + 0.5 - cy) ** 2) / (2 * sy * sy))
        gau[iy, ix] = 1.0
        upd = (gau >= 0.4) & (gau > wt)
        sz[0][upd], sz[1][upd] = np.log(w), np.log(h)
        wt[upd] = gau[upd]
        hm = np.maximum(hm, gau)
    return hm, sz, wt, valid


class PlateSamples(torch.utils.data.Dataset):
    """Sample k: an augmented C x C crop from a random Romanian train frame at a random scale."""

    def __init__(self, frames, n, seed, crop=320, synth_p=0.5, distract_p=0.0):
        self.frames = frames  # [(pyramid [PIL full, 1/2, 1/4], boxes [n,4])]
        self.n, self.seed, self.C, self.synth_p, self.distract_p = n, seed, crop, synth_p, distract_p

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        rng = np.random.default_rng([self.seed, k])
        C = self.C
        pyr, boxes = self.frames[int(rng.integers(len(self.frames)))]
        W0, H0 = pyr[0].size
        base = 640.0 / max(W0, H0)  # the runtime letterbox scale
        s = base * float(np.exp(rng.uniform(np.log(0.3), np.log(3.2))))
        ax = float(np.exp(rng.uniform(-0.2, 0.2)))
        sx, sy = s * ax, s / ax
        ang = np.deg2rad(rng.uniform(-4, 4)) if rng.random() < 0.4 else 0.0
        if len(boxes) and rng.random() < 0.8:
            b = boxes[int(rng.integers(len(boxes)))]
            px, py = (b[0] + b[2]) / 2 * sx, (b[1] + b[3]) / 2 * sy
            ox, oy = px - rng.uniform(0.1, 0.9) * C, py - rng.uniform(0.1, 0.9) * C
        else:
            ox = rng.uniform(min(0, W0 * sx - C), max(0, W0 * sx - C))
            oy = rng.uniform(min(0, H0 * sy - C), max(0, H0 * sy - C))
        lvl = 0
        while lvl < 2 and s * 2 ** (lvl + 1) <= 1.0 / 0.7:  # use the coarsest level still >= ~0.7x the output
            lvl += 1
        f = 0.5 ** lvl
        # output (u,v) -> rotate about crop centre -> scaled frame coords -> original -> pyramid level
        c, si = np.cos(ang), np.sin(ang)
        h = C / 2
        # u' = c*(u-h) - si*(v-h) + h ; v' = si*(u-h) + c*(v-h) + h ; x = (u'+ox)/sx*f ; y = (v'+oy)/sy*f
        a = (c * f / sx, -si * f / sx, ((-c * h + si * h + h) + ox) * f / sx)
        d = (si * f / sy, c * f / sy, ((-si * h - c * h + h) + oy) * f / sy)
        fill = (0, 0, 0) if rng.random() < 0.5 else tuple(int(v) for v in rng.integers(0, 256, 3))
        img = pyr[lvl].transform((C, C), Image.AFFINE, a + d, Image.BILINEAR, fillcolor=fill)
        # boxes forward: scaled coords, then inverse rotation about centre, axis-aligned hull
        out, ign = [], []
        for b in boxes:
            xs = np.array([b[0], b[2], b[2], b[0]]) * sx - ox - h
            ys = np.array([b[1], b[1], b[3], b[3]]) * sy - oy - h
            u, v = c * xs + si * ys + h, -si * xs + c * ys + h
            bb = np.array([u.min(), v.min(), u.max(), v.max()], np.float32)
            w = bb[2] - bb[0]
            cx, cy = (bb[0] + bb[2]) / 2, (bb[1] + bb[3]) / 2
            vis = max(0, min(bb[2], C) - max(bb[0], 0)) * max(0, min(bb[3], C) - max(bb[1], 0))
            area = (bb[2] - bb[0]) * (bb[3] - bb[1])
            if bb[2] <= 0 or bb[3] <= 0 or bb[0] >= C or bb[1] >= C:
                continue
            if w < 9 or vis < 0.6 * area or not (0 <= cx < C and 0 <= cy < C):
                ign.append(bb)
            else:
                out.append(bb)
        if rng.random() < self.synth_p:
            n0 = len(out)
            allb = out + ign
            paste_synthetic(img, rng, allb)
            out = out + allb[n0 + len(ign):]
        if rng.random() < self.distract_p:
            paste_distractors(img, rng, out + ign)
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
            out = [np.array([C - b[2], b[1], C - b[0], b[3]], np.float32) for b in out]
            ign = [np.array([C - b[2], b[1], C - b[0], b[3]], np.float32) for b in ign]
        x = photometric(img, rng)
        hm, sz, wt, valid = targets(out, ign, C)
        return (torch.from_numpy(x.transpose(2, 0, 1).copy()), torch.from_numpy(hm[None]), torch.from_numpy(sz),
                torch.from_numpy(wt[None]), torch.from_numpy(valid[None]))
