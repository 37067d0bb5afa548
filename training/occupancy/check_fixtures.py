#!/usr/bin/env python3
"""Runs an exported model (onnxruntime, CPU) over the Rust test fixtures and checks, approximately, what
tests/occupancy.rs and tests/occupancy_e2e.rs assert about the committed model. Run it before committing a
retrained model (it needs no Rust build):

    python training/occupancy/check_fixtures.py [--model models/occupancy/bay_classifier.onnx]

Checks (exit status 1 if one fails):
  * testdata/occupancy/patches/{free,occupied}/*.jpg: every patch right at p >= 0.5 (the test asserts 20/20),
    and batched == one by one;
  * testdata/occupancy/frames/*.jpg + .xml (PKLot): accuracy >= 64/66 and no free bay called occupied;
  * `bays preview` on frames/aerial-lot-f060.jpg: each of the 32 configured bays (testdata/occupancy/
    aerial-lot.toml) on the right side of the default thresholds (occupied p >= 0.7, free p <= 0.3);
  * testdata/clips/aerial-lot.mp4 (information, needs PyAV): per configured bay, the share of frames decided
    right with those thresholds (the end-to-end test waits for the labelled counts on the boards).

The warp below mirrors src/occupancy/warp.rs (corner order, unit square -> quad projective map, pixel
centres at +0.5, bilinear, edge replication). JPEG / H.264 decoders differ slightly between PIL / PyAV and
the Rust crates, so look at the margins, not only at pass / fail.
"""
import argparse
import csv
import glob
import os
import sys
import tomllib
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PW, PH = 64, 32
LOW, HIGH = 0.3, 0.7  # config defaults (src/config), used by `bays preview` and the tracker


def bay_quad(poly):
    """src/occupancy/warp.rs BayQuad::from_polygon for 4-point polygons."""
    c = [list(map(float, p)) for p in poly]
    assert len(c) == 4, "only 4-point polygons here"
    area2 = sum(c[i][0] * c[(i + 1) % 4][1] - c[(i + 1) % 4][0] * c[i][1] for i in range(4))
    if area2 < 0:
        c.reverse()
    ln = lambda a, b: np.hypot(b[0] - a[0], b[1] - a[1])  # noqa: E731
    long02 = ln(c[0], c[1]) + ln(c[2], c[3]) >= ln(c[1], c[2]) + ln(c[3], c[0])
    cand = (0, 2) if long02 else (1, 3)

    def score(s):
        a, b = c[s], c[(s + 1) % 4]
        dx, dy = b[0] - a[0], b[1] - a[1]
        n = max(np.hypot(dx, dy), 1e-6)
        return dx / n, -dy / n

    a, b = score(cand[0]), score(cand[1])
    if abs(a[0] - b[0]) > 1e-3:
        start = cand[0] if a[0] > b[0] else cand[1]
    else:
        start = cand[0] if a[1] >= b[1] else cand[1]
    return np.array([c[(start + k) % 4] for k in range(4)], np.float64)


def warp(img, quad):
    """img uint8 [H, W, 3] -> float32 [3, 32, 64] (src/occupancy/warp.rs warp_into)."""
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = quad
    dx3, dy3 = x0 - x1 + x2 - x3, y0 - y1 + y2 - y3
    dx1, dy1, dx2, dy2 = x1 - x2, y1 - y2, x3 - x2, y3 - y2
    det = dx1 * dy2 - dx2 * dy1
    if (abs(dx3) < 1e-6 and abs(dy3) < 1e-6) or abs(det) < 1e-9:
        g = h = 0.0
    else:
        g, h = (dx3 * dy2 - dx2 * dy3) / det, (dx1 * dy3 - dx3 * dy1) / det
    a, b, c = x1 - x0 + g * x1, x3 - x0 + h * x3, x0
    d, e, f = y1 - y0 + g * y1, y3 - y0 + h * y3, y0
    v, u = np.mgrid[0:PH, 0:PW].astype(np.float64)
    u, v = (u + 0.5) / PW, (v + 0.5) / PH
    w = g * u + h * v + 1.0
    H, W = img.shape[:2]
    x = np.clip((a * u + b * v + c) / w - 0.5, 0, W - 1)
    y = np.clip((d * u + e * v + f) / w - 0.5, 0, H - 1)
    xi, yi = x.astype(int), y.astype(int)
    fx, fy = (x - xi)[..., None], (y - yi)[..., None]
    xj, yj = np.minimum(xi + 1, W - 1), np.minimum(yi + 1, H - 1)
    im = img.astype(np.float64)
    p = (im[yi, xi] * (1 - fx) * (1 - fy) + im[yi, xj] * fx * (1 - fy) + im[yj, xi] * (1 - fx) * fy
         + im[yj, xj] * fx * fy)
    return (p / 255.0).astype(np.float32).transpose(2, 0, 1)


def rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=os.path.join(REPO, "models", "occupancy", "bay_classifier.onnx"))
    ap.add_argument("--testdata", default=os.path.join(REPO, "testdata"))
    args = ap.parse_args()
    import onnxruntime as ort

    so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.model, so, providers=["CPUExecutionProvider"])
    run = lambda x: sess.run(["p_occupied"], {"patches": np.ascontiguousarray(x, np.float32)})[0]  # noqa: E731
    occ = os.path.join(args.testdata, "occupancy")
    ok = True

    # 1. patch folders
    files = [(f, lab == "occupied") for lab in ("free", "occupied")
             for f in sorted(glob.glob(os.path.join(occ, "patches", lab, "*.jpg")))]
    x = np.stack([warp(rgb(f), bay_quad([[0, 0], [im.shape[1], 0], [im.shape[1], im.shape[0]], [0, im.shape[0]]]))
                  for f, _ in files for im in [rgb(f)]])
    p = run(x)
    alone = np.array([run(x[i:i + 1])[0] for i in range(len(x))])
    y = np.array([o for _, o in files])
    right = (p >= 0.5) == y
    print(f"fixture patches: {int(right.sum())}/{len(files)} right at 0.5 (test: 20/20); "
          f"free p max {p[~y].max():.3f}, occupied p min {p[y].min():.3f}; batched vs alone max |diff| "
          f"{np.abs(alone - p).max():.1e} (test: < 1e-4)")
    for (f, o), pp in zip(files, p):
        print(f"    {'occupied' if o else 'free':8s} {os.path.basename(f):24s} p={pp:.3f}{'' if (pp >= 0.5) == o else '  WRONG'}")
    ok &= bool(right.all()) and len(files) == 20 and np.abs(alone - p).max() < 1e-4

    # 2. frames with PKLot XML (all labelled bays of the clip, 188 included)
    tp = tn = fp = fn = 0
    wrong = []
    for xml in sorted(glob.glob(os.path.join(occ, "frames", "*.xml"))):
        img = rgb(xml[:-4] + ".jpg")
        spaces = []
        for s in ET.parse(xml).getroot().iter("space"):
            poly = [(float(q.get("x")), float(q.get("y"))) for q in s.find("contour").iter("point")]
            spaces.append((s.get("id"), s.get("occupied") == "1", poly))
        pf = run(np.stack([warp(img, bay_quad(poly)) for _, _, poly in spaces]))
        for (sid, o, _), pp in zip(spaces, pf):
            pred = pp >= 0.5
            tp += pred and o; tn += (not pred) and (not o); fp += pred and not o; fn += (not pred) and o
            if pred != o:
                wrong.append(f"{os.path.basename(xml)[:-4]} bay {sid} ({'occupied' if o else 'free'}) p={pp:.3f}")
    n = tp + tn + fp + fn
    print(f"XML frames: {n} samples, accuracy {(tp + tn) / n:.4f} ({tp + tn}/{n}; test: >= 64/66), "
          f"fp {fp} (test: 0), fn {fn}; wrong: {wrong or 'none'}")
    ok &= n == 66 and tp + tn >= 64 and fp == 0

    # 3. bays preview on f060 and 4. the clip: the 32 configured bays
    conf = tomllib.load(open(os.path.join(occ, "aerial-lot.toml"), "rb"))
    bays = [(b["space"], b["polygon"]) for b in conf["bays"]]
    labels = {r["space"]: r["label"] for r in csv.DictReader(open(os.path.join(occ, "aerial-lot-labels.csv")))}
    quads = [bay_quad(poly) for _, poly in bays]
    lab = np.array([labels[s] == "occupied" for s, _ in bays])

    def decided_right(pp):
        return np.where(lab, pp >= HIGH, pp <= LOW)

    img = rgb(os.path.join(occ, "frames", "aerial-lot-f060.jpg"))
    pp = run(np.stack([warp(img, q) for q in quads]))
    good = decided_right(pp)
    margin = np.where(lab, pp - HIGH, LOW - pp)
    k = int(np.argmin(margin))
    print(f"preview f060: {int(good.sum())}/{len(bays)} configured bays decided right with low {LOW} / high {HIGH}"
          f" (test: all {len(bays)}); closest: {bays[k][0]} ({'occupied' if lab[k] else 'free'}) p={pp[k]:.3f}")
    if not good.all():
        print("    wrong / undecided:", [f"{bays[i][0]} p={pp[i]:.3f}" for i in np.flatnonzero(~good)])
    ok &= bool(good.all())

    clip = os.path.join(args.testdata, "clips", "aerial-lot.mp4")
    try:
        import av
        with av.open(clip) as cnt:
            frames = [fr.to_ndarray(format="rgb24") for fr in cnt.decode(video=0)]
        ps = np.stack([run(np.stack([warp(f, q) for q in quads])) for f in frames])  # [frames, bays]
        share = np.where(lab, ps >= HIGH, ps <= LOW).mean(0)
        worst = np.argsort(share)[:3]
        print(f"clip: {len(frames)} frames x {len(bays)} bays: {np.where(lab, ps >= HIGH, ps <= LOW).mean():.4f} of "
              f"decisions right with the thresholds; frames with every bay right: "
              f"{int(np.where(lab, ps >= HIGH, ps <= LOW).all(1).sum())}/{len(frames)}; lowest per bay: "
              + ", ".join(f"{bays[i][0]} {share[i]:.2f}" for i in worst))
    except ImportError:
        print("clip: skipped (no PyAV)")
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
