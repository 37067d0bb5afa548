#!/usr/bin/env python3
"""Cut the Rust test fixture (testdata/occupancy/patches/{free,occupied}/*.jpg) from the held-out bays.

    python training/occupancy/make_fixture.py [--data ../shared/data] [--model models/occupancy/bay_classifier.onnx]

Each fixture file is a held-out (manifest split == val) patch resized to exactly 64x32 with PIL bilinear,
saved as JPEG quality 95 without chroma subsampling, so the Rust test only has to decode and divide by 255.
Selection, per class: the bays are taken in turn (so every held-out bay appears where the count allows),
and for each bay the patch at the 25th percentile of the model's confidence among the patches that the
model classifies with a margin (p >= 0.75 occupied, p <= 0.25 free, also after +-2 grey-level noise, to
survive JPEG-decoder differences). That avoids both the errors and the easiest patches. Prints a markdown
table for SOURCE.md.
"""
import argparse
import io
import os
import sys

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--model", default=os.path.join(REPO, "models", "occupancy", "bay_classifier.onnx"))
    ap.add_argument("--out", default=os.path.join(REPO, "testdata", "occupancy", "patches"))
    ap.add_argument("--per-class", type=int, default=10)
    args = ap.parse_args()
    import onnxruntime as ort

    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    rows = [r for r in D.read_manifest(args.data) if r["split"] == "val"]
    jpgs, xs = [], []
    for r in rows:
        im = Image.open(r["abspath"]).convert("RGB").resize((64, 32), Image.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=95, subsampling=0)
        jpgs.append(buf.getvalue())
        xs.append(D.patch_to_input(Image.open(io.BytesIO(buf.getvalue()))))
    x = np.stack(xs)
    p = sess.run(["p_occupied"], {"patches": x})[0]
    rng = np.random.default_rng(0)
    pn = [sess.run(["p_occupied"], {"patches": np.clip(x + rng.integers(-2, 3, x.shape) / 255.0, 0, 1)
                                    .astype(np.float32)})[0] for _ in range(4)]
    lo, hi = np.minimum.reduce([p] + pn), np.maximum.reduce([p] + pn)
    table = []
    for lab in ("free", "occupied"):
        ok = {}
        for i, r in enumerate(rows):
            if r["label"] != lab:
                continue
            good = hi[i] <= 0.25 if lab == "free" else lo[i] >= 0.75
            if good:
                ok.setdefault(r["bay"], []).append(i)
        for b in ok:  # per bay: sort by confidence, hardest first
            ok[b].sort(key=lambda i: p[i] if lab == "free" else -p[i], reverse=True)
        chosen, bays, turn = [], sorted(ok), 0
        used = {b: 0 for b in bays}
        while len(chosen) < args.per_class and any(used[b] < len(ok[b]) for b in bays):
            b = bays[turn % len(bays)]
            turn += 1
            if used[b] >= len(ok[b]):
                continue
            cand = ok[b]
            # k-th pick of a bay: quantiles 0.25, 0.6, 0.1, ... of its qualifying patches
            q = [0.25, 0.6, 0.1, 0.8, 0.45][used[b] % 5]
            i = cand[min(len(cand) - 1, int(q * len(cand)))]
            while i in chosen:
                i = cand[(cand.index(i) + 1) % len(cand)]
            chosen.append(i)
            used[b] += 1
        d = os.path.join(args.out, lab)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            if f.endswith(".jpg"):
                os.remove(os.path.join(d, f))
        for i in chosen:
            name = f"bay{rows[i]['bay']:03d}_{rows[i]['note']}.jpg"
            with open(os.path.join(d, name), "wb") as f:
                f.write(jpgs[i])
            table.append((lab, name, os.path.relpath(rows[i]["abspath"], args.data), p[i]))
    print("| class | file | original (under shared/data) | p_occupied |")
    print("|---|---|---|---|")
    for lab, name, orig, pp in table:
        print(f"| {lab} | {lab}/{name} | {orig} | {pp:.3f} |")


if __name__ == "__main__":
    main()
