#!/usr/bin/env python3
"""Draft labels for the carPark.mp4 bays that are not in the manifest, for a person to check.

    python training/occupancy/prelabel_extra_bays.py --model /tmp/v0.onnx --outdir /tmp/prelabel

A model trained *without* extra bays predicts every non-manifest bay on several frames; the script writes
``draft_extra_bays.csv`` and contact sheets (``sheet_*.png``, bays sorted by p_occupied, each tile shows the
bay at 3x with its id) that a person reviews, correcting the label column, before the file is saved as
training/occupancy/extra_bays.csv. Bays whose prediction changes across frames are marked ``unsure``
(excluded from training unless a person resolves them).
"""
import argparse
import csv
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import augment  # noqa: E402
import data as D  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--model", required=True)
    ap.add_argument("--outdir", required=True)
    args = ap.parse_args()
    import onnxruntime as ort

    os.makedirs(args.outdir, exist_ok=True)
    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    known = D.manifest_split_bays(args.data)
    boxes = D.video_bays(args.data)
    extra = [b for b in sorted(boxes) if b not in known]
    fids = [0, 212, 424, 636, 848]
    frames = D.read_video_frames(args.data, fids)
    probs = np.zeros((len(fids), len(extra)))
    for k, fi in enumerate(fids):
        src = D.Sources()
        D.add_video(src, args.data, {fi: frames[fi]}, {b: "free" for b in extra})
        src.finalize()
        x = augment.make_batch(None, src, range(len(extra)), train=False)
        probs[k] = sess.run(["p_occupied"], {"patches": x})[0]
    rows = []
    for j, b in enumerate(extra):
        p = probs[:, j]
        lab = "occupied" if p.min() > 0.5 else "free" if p.max() < 0.5 else "unsure"
        rows.append({"bay": b, "label": lab, "p_mean": f"{p.mean():.3f}", "p_min": f"{p.min():.3f}",
                     "p_max": f"{p.max():.3f}"})
    with open(os.path.join(args.outdir, "draft_extra_bays.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    # contact sheets: tile = bay with some context at 3x, bay box outlined
    order = sorted(range(len(extra)), key=lambda j: probs[:, j].mean())
    tw, th, per_row = 3 * 64, 3 * 36 + 14, 8
    fr = frames[0]
    for s0 in range(0, len(order), 64):
        part = order[s0 : s0 + 64]
        sheet = Image.new("RGB", (tw * per_row, th * ((len(part) + per_row - 1) // per_row)), "black")
        d = ImageDraw.Draw(sheet)
        for t, j in enumerate(part):
            x, y, w, h = boxes[extra[j]]
            cx, cy = x + w / 2, y + h / 2
            crop = Image.fromarray(fr).crop((int(cx - 32), int(cy - 18), int(cx + 32), int(cy + 18)))
            tile = crop.resize((tw, 3 * 36), Image.NEAREST)
            td = ImageDraw.Draw(tile)
            bx0, by0 = 3 * (x - int(cx - 32)), 3 * (y - int(cy - 18))
            td.rectangle([bx0, by0, bx0 + 3 * w, by0 + 3 * h], outline=(255, 0, 255))
            ox, oy = (t % per_row) * tw, (t // per_row) * th
            sheet.paste(tile, (ox, oy))
            d.text((ox + 2, oy + 3 * 36), f"{extra[j]} {rows[j]['label'][:3]} {probs[:, j].mean():.2f}", fill="white")
        sheet.save(os.path.join(args.outdir, f"sheet_{s0 // 64:02d}.png"))
    print(f"{len(extra)} bays; " + ", ".join(f"{k}: {sum(r['label'] == k for r in rows)}"
                                             for k in ("free", "occupied", "unsure")))


if __name__ == "__main__":
    main()
