#!/usr/bin/env python3
"""Held-out accuracy of the exported ONNX model under simple input changes (orientation, light, blur,
resolution). A check of the invariances the augmentation aims for, not a substitute for another lot.

    python training/occupancy/robustness.py [--data ../shared/data] [--model models/occupancy/bay_classifier.onnx]
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
from train import REPO, metrics  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
    ap.add_argument("--model", default=os.path.join(REPO, "models", "occupancy", "bay_classifier.onnx"))
    args = ap.parse_args()
    import onnxruntime as ort

    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    rows = [r for r in D.read_manifest(args.data) if r["split"] == "val"]
    ims = [Image.open(r["abspath"]).convert("RGB") for r in rows]
    y = np.array([r["label"] == "occupied" for r in rows], np.int64)
    gray = lambda im: im.convert("L").convert("RGB")
    variants = {
        "as is": lambda im: im,
        "rotated 180": lambda im: im.rotate(180),
        "mirrored left-right": lambda im: im.transpose(Image.FLIP_LEFT_RIGHT),
        "mirrored top-bottom": lambda im: im.transpose(Image.FLIP_TOP_BOTTOM),
        "grayscale": gray,
        "darker (x0.5)": lambda im: Image.eval(im, lambda v: int(v * 0.5)),
        "brighter (x1.5)": lambda im: Image.eval(im, lambda v: min(255, int(v * 1.5))),
        "gaussian blur r=1.5": lambda im: im.filter(ImageFilter.GaussianBlur(1.5)),
        "low resolution (1/3)": lambda im: im.resize((im.width // 3, im.height // 3), Image.BILINEAR),
    }
    print("| input change | accuracy | balanced accuracy | F1 occupied |")
    print("|---|---|---|---|")
    for name, f in variants.items():
        x = np.stack([D.patch_to_input(f(im)) for im in ims])
        p = sess.run(["p_occupied"], {"patches": x})[0]
        m = metrics(p, y)
        print(f"| {name} | {m['accuracy']:.3f} | {m['balanced_accuracy']:.3f} | {m['f1_occupied']:.3f} |")


if __name__ == "__main__":
    main()
