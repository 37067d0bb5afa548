"""Data loading for the bay occupancy classifier.

Every training example is a *source*: a fixed-size canvas (CANVAS_H x CANVAS_W RGB uint8) holding a bay
with some surrounding context, plus the bay's quadrilateral inside that canvas (TL, TR, BR, BL, in
continuous pixel coordinates, bay long axis horizontal), a label (1 = occupied) and a group id (one id
per physical bay or per car instance) used for balanced sampling.

Sources:
  * ``manifest``  -- the cve_clfdata patches (1920x1080 video, ~69x29 px), train split only. The patch is
                     the bay itself, so the canvas around it is reflect-padded.
  * ``video``     -- the same lot cut from carPark.mp4 (1280x720, bays ~45x19 px) with real context, for
                     the train bays of the manifest and for the extra bays listed in extra_bays.csv
                     (hand-checked labels, with frame ranges for the few bays that change state).
  * ``romanian``  -- MIT dash-cam frames: a car-sized box anchored on each labelled licence plate, used as
                     extra *occupied* examples seen from the ground at an oblique angle.
  * ``synthetic`` -- procedural empty ground (concrete, brick, pavers, ...) as extra *free* examples.

Validation bays (manifest split == "val") are never loaded into any training source; ``load_val`` returns
the held-out manifest patches.
"""
from __future__ import annotations

import csv
import glob
import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

CANVAS_H, CANVAS_W = 64, 112
OUT_H, OUT_W = 32, 64  # ONNX contract: [N, 3, 32, 64]
HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass
class Sources:
    canvas: list = field(default_factory=list)  # uint8 [CANVAS_H, CANVAS_W, 3]
    quad: list = field(default_factory=list)  # float32 [4, 2] (x, y): TL, TR, BR, BL
    label: list = field(default_factory=list)  # 0 free / 1 occupied
    group: list = field(default_factory=list)  # str id of the physical bay / car
    kind: list = field(default_factory=list)  # manifest / video / romanian

    def add(self, canvas, quad, label, group, kind):
        assert canvas.shape == (CANVAS_H, CANVAS_W, 3) and canvas.dtype == np.uint8
        self.canvas.append(canvas)
        self.quad.append(np.asarray(quad, np.float32))
        self.label.append(int(label))
        self.group.append(group)
        self.kind.append(kind)

    def finalize(self):
        self.canvas = np.stack(self.canvas)
        self.quad = np.stack(self.quad)
        self.label = np.asarray(self.label, np.int64)
        self.group = np.asarray(self.group)
        self.kind = np.asarray(self.kind)
        return self


def _rect_quad(x0, y0, w, h):
    return [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)]


def read_manifest(data_dir):
    path = os.path.join(data_dir, "occupancy", "manifest.csv")
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            r["bay"] = int(r["view"].split("bay")[1])
            r["abspath"] = os.path.join(data_dir, "occupancy", r["path"])
            rows.append(r)
    return rows


def manifest_split_bays(data_dir):
    """bay id -> (split, label) for the 100 labelled bays."""
    out = {}
    for r in read_manifest(data_dir):
        prev = out.setdefault(r["bay"], (r["split"], r["label"]))
        assert prev == (r["split"], r["label"]), f"bay {r['bay']} changes split/label"
    return out


def add_manifest_patches(src: Sources, data_dir, every=1):
    rows = [r for r in read_manifest(data_dir) if r["split"] == "train"]
    for r in rows[::every]:
        im = np.asarray(Image.open(r["abspath"]).convert("RGB"))
        h, w = im.shape[:2]
        py0, px0 = (CANVAS_H - h) // 2, (CANVAS_W - w) // 2
        canvas = np.pad(im, ((py0, CANVAS_H - h - py0), (px0, CANVAS_W - w - px0), (0, 0)), mode="reflect")
        src.add(canvas, _rect_quad(px0, py0, w, h), r["label"] == "occupied", f"bay{r['bay']}", "manifest")


def video_bays(data_dir):
    """Bay boxes in carPark.mp4 pixel coordinates (the JSON is for 1920x1080; the video is 1280x720)."""
    with open(os.path.join(data_dir, "occupancy", "video", "cve_aerial_lot", "bays_1920x1080.json")) as f:
        bays = json.load(f)["bays"]
    s = 2.0 / 3.0
    return {b["bay"]: (b["x"] * s, b["y"] * s, b["w"] * s, b["h"] * s) for b in bays}


def read_video_frames(data_dir, frame_ids):
    import av  # PyAV; only needed when video sources are used

    want = set(frame_ids)
    out = {}
    path = os.path.join(data_dir, "occupancy", "video", "cve_aerial_lot", "carPark.mp4")
    with av.open(path) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i in want:
                out[i] = fr.to_ndarray(format="rgb24")
            if i >= max(want):
                break
    return out


def crop_bay(frame, box):
    """Cut a CANVAS_H x CANVAS_W window centred on the bay; return (canvas, quad in canvas coords)."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = int(round(cx - CANVAS_W / 2)), int(round(cy - CANVAS_H / 2))
    H, W = frame.shape[:2]
    pad = max(CANVAS_W, CANVAS_H)
    fp = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    canvas = fp[y0 + pad : y0 + pad + CANVAS_H, x0 + pad : x0 + pad + CANVAS_W]
    return np.ascontiguousarray(canvas), _rect_quad(x - x0, y - y0, w, h)


def read_extra_bays(path=os.path.join(HERE, "extra_bays.csv")):
    """Hand-checked labels for the video bays outside the manifest (see README):
    bay id -> [(label, first_frame, last_frame)]. A few bays change state during the video; the frames
    around the change (a car manoeuvring) are left out."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["label"] in ("free", "occupied"):
                out.setdefault(int(r["bay"]), []).append((r["label"], int(r["first_frame"]), int(r["last_frame"])))
    return out


def add_video(src: Sources, data_dir, frames, bay_labels):
    """bay_labels: bay id -> label for the whole video, or -> [(label, first_frame, last_frame)]."""
    boxes = video_bays(data_dir)
    for fi in sorted(frames):
        fr = frames[fi]
        for bay, lab in sorted(bay_labels.items()):
            spans = [(lab, 0, 10**9)] if isinstance(lab, str) else lab
            for l, f0, f1 in spans:
                if f0 <= fi <= f1:
                    canvas, quad = crop_bay(fr, boxes[bay])
                    src.add(canvas, quad, l == "occupied", f"bay{bay}", "video")


def romanian_car_boxes(data_dir, min_plate_w=40):
    """(image path, car box x0,y0,w,h) estimated from each plate box: a 2:1 box ~4.2 plate widths wide."""
    out = []
    for xml in sorted(glob.glob(os.path.join(data_dir, "alpr", "romanian", "dataset", "*", "annots", "*.xml"))):
        img = xml.replace(os.sep + "annots" + os.sep, os.sep + "images" + os.sep)[: -len(".xml")] + ".jpg"
        if not os.path.exists(img):
            continue
        root = ET.parse(xml).getroot()
        for o in root.iter("object"):
            b = o.find("bndbox")
            x0, y0, x1, y1 = (float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))
            pw = x1 - x0
            if pw < min_plate_w:
                continue
            cw, ch = 4.2 * pw, 2.1 * pw
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.45 * pw
            out.append((img, (cx - cw / 2, cy - ch / 2, cw, ch)))
    return out


def add_romanian(src: Sources, data_dir):
    # the car box (80x40 in the canvas) keeps 16 px of context left/right and 12 px top/bottom
    # frames are edge-padded so that boxes near the border stay valid; cars whose box leaves the frame
    # by more than a quarter of its width are skipped
    cache, pad = {}, 400
    for i, (img, (x, y, w, h)) in enumerate(romanian_car_boxes(data_dir)):
        if img not in cache:
            cache.clear()
            a = np.asarray(Image.open(img).convert("RGB"))
            cache[img] = (Image.fromarray(np.pad(a, ((pad, pad), (pad, pad), (0, 0)), mode="edge")), a.shape)
        im, (ih, iw, _) = cache[img]
        if x < -w / 4 or x + w > iw + w / 4 or y < -h / 4 or y + h > ih + h / 4:
            continue
        sx, sy = w / 80.0, h / 40.0
        box = (pad + x - 16 * sx, pad + y - 12 * sy, pad + x + (80 + 16) * sx, pad + y + (40 + 12) * sy)
        if box[0] < 0 or box[1] < 0 or box[2] > im.width or box[3] > im.height:
            continue
        canvas = np.asarray(im.resize((CANVAS_W, CANVAS_H), Image.BILINEAR, box=box, reducing_gap=2.0))
        src.add(canvas.copy(), _rect_quad(16, 12, 80, 40), 1, f"rom{i}", "romanian")


def load_val(data_dir):
    """Held-out manifest patches resized to 64x32: (x float32 [N,3,32,64] in [0,1], y, bay ids, paths)."""
    rows = [r for r in read_manifest(data_dir) if r["split"] == "val"]
    xs = [patch_to_input(Image.open(r["abspath"])) for r in rows]
    y = np.array([r["label"] == "occupied" for r in rows], np.int64)
    return np.stack(xs), y, np.array([r["bay"] for r in rows]), [r["abspath"] for r in rows]


def patch_to_input(im: Image.Image):
    """A bay patch (long axis horizontal) -> float32 [3, 32, 64] RGB in [0, 1] (the runtime contract)."""
    im = im.convert("RGB")
    if im.size != (OUT_W, OUT_H):
        im = im.resize((OUT_W, OUT_H), Image.BILINEAR)
    return (np.asarray(im, np.float32) / 255.0).transpose(2, 0, 1)


def _smooth_noise(rng, h, w, scale):
    small = rng.normal(size=(max(2, h // scale), max(2, w // scale)))
    im = Image.fromarray(((small - small.min()) / (np.ptp(small) + 1e-9) * 255).astype(np.uint8))
    return np.asarray(im.resize((w, h), Image.BICUBIC), np.float32) / 255.0 - 0.5


def add_synthetic_ground(src: Sources, n, seed):
    """Procedural *free* bays: pavement of a random colour (asphalt, concrete, brick, gravel, greyish green)
    with multi-scale noise, optional paver/brick joints, stains and painted lines. They teach "empty ground
    of any kind is free", which the single asphalt lot cannot."""
    rng = np.random.default_rng(seed)
    palette = np.array([[0.35, 0.35, 0.36], [0.55, 0.54, 0.52], [0.70, 0.68, 0.64], [0.45, 0.30, 0.25],
                        [0.60, 0.40, 0.32], [0.50, 0.48, 0.40], [0.38, 0.42, 0.36], [0.22, 0.22, 0.24]])
    yy, xx = np.mgrid[0:CANVAS_H, 0:CANVAS_W]
    for i in range(n):
        base = palette[rng.integers(len(palette))] * rng.uniform(0.75, 1.25) + rng.normal(0, 0.03, 3)
        img = np.ones((CANVAS_H, CANVAS_W, 3), np.float32) * base
        for sc, amp in ((2, rng.uniform(0.01, 0.06)), (8, rng.uniform(0.0, 0.06)), (24, rng.uniform(0.0, 0.08))):
            n_ = _smooth_noise(rng, CANVAS_H, CANVAS_W, sc)
            img += amp * 2 * (n_[:, :, None] if rng.random() < 0.8 else _smooth_noise(rng, CANVAS_H, CANVAS_W, sc)[:, :, None])
        if rng.random() < 0.4:  # pavers / bricks: grid of darker joints, running bond or not
            ph, pw = rng.integers(4, 12), rng.integers(4, 20)
            off = (yy // ph % 2) * (pw // 2) if rng.random() < 0.5 else 0
            joint = ((yy % ph) == 0) | (((xx + off) % pw) == 0)
            img[joint] *= rng.uniform(0.6, 0.9)
        for _ in range(rng.integers(0, 3)):  # stains
            cy, cx = rng.uniform(0, CANVAS_H), rng.uniform(0, CANVAS_W)
            r = rng.uniform(2, 10)
            m = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            img *= 1 - rng.uniform(0.1, 0.4) * m[:, :, None]
        if rng.random() < 0.6:  # painted markings around the bay
            col = np.array([0.9, 0.9, 0.9]) if rng.random() < 0.6 else np.array([0.9, 0.75, 0.2])
            t = rng.integers(1, 3)
            for y0 in (16 - t, 48):
                if rng.random() < 0.7:
                    img[y0 : y0 + t, 16:96] = col * rng.uniform(0.7, 1.0)
            if rng.random() < 0.5:
                img[16:48, 16 : 16 + t] = col * rng.uniform(0.7, 1.0)
        canvas = (np.clip(img, 0, 1) * 255).astype(np.uint8)
        src.add(canvas, _rect_quad(16, 16, 80, 32), 0, f"ground{i}", "synthetic")
