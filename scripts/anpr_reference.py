#!/usr/bin/env python3
"""Reference plate reader for `lotsense eval anpr`: the same PP-OCRv6 models, run by
the rapidocr 3.10.0 Python package (its own pre/post-processing) on onnxruntime.

Per frame:
  1. RapidOCR on the whole decoded frame (BGR ndarray), the two model files given with
     --det-model/--rec-model, orientation classifier off, onnxruntime with one intra-op
     and one inter-op thread, OpenCV limited to one thread. Detector input: by default
     the longer side limited to 960 (`Det.limit_type=max`, `Det.limit_side_len=960`),
     the size lotsense uses; `--rapidocr-defaults` keeps RapidOCR's own setting
     (shorter side enlarged to 736). RapidOCR's text-score filter is set to 0 so every
     box comes back (for detection recall); the plate rule below applies the package's
     default 0.5 itself.
  2. Plate choice among RapidOCR's text results (no format rules):
     - drop results with recognition score < 0.5 (RapidOCR's default `text_score`);
     - drop texts containing ':' (clock overlays);
     - normalise: upper case, keep A-Z and 0-9 only;
     - keep 4-8 characters with at least one letter and one digit;
     - pick the highest recognition score x box height (mean of the quad's left and
       right edges, frame pixels). No pick: the frame counts as a miss.

Metrics are computed exactly as `lotsense eval anpr` does (src/anpr/eval.rs): the
same sample discovery (recursive; each folder is a group; NAME.jpg + NAME.txt
`image x y w h PLATE`, or groundtruth.csv + images/), exact match, exact match with
O == 0, character error rate (edit distance / label length, a miss reads as ""),
detection recall at IoU >= 0.5 and >= 0.3 (any returned text box's bounding box vs the
labelled box), latency p50/p95 (nearest rank, index round((n-1) p)) measured around the
RapidOCR call only (image decoding excluded, models loaded before timing).

Usage:
  .deps/venv-ref/bin/python scripts/anpr_reference.py --data DIR [--json] [--limit N]
      [--outcomes FILE] [--rapidocr-defaults] [--det-limit-type max|min]
      [--det-limit-side N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DET = REPO / "models" / "ppocr" / "PP-OCRv6_det_small.onnx"
DEFAULT_REC = REPO / "models" / "ppocr" / "PP-OCRv6_rec_small.onnx"

MIN_REC_SCORE = 0.5  # RapidOCR's default Global.text_score
MIN_LEN, MAX_LEN = 4, 8


# ---------------------------------------------------------------- data set (as eval.rs)

def normalise(s: str) -> str:
    return "".join(c.upper() for c in s if c.isascii() and c.isalnum())


def _group(root: Path, d: Path) -> str:
    rel = d.relative_to(root)
    return root.name if str(rel) == "." else str(rel)


def load_dataset(root: Path) -> list[dict]:
    if not root.is_dir():
        sys.exit(f"{root} is not a folder")
    out: list[dict] = []

    def walk(d: Path) -> None:
        for p in sorted(d.iterdir(), key=lambda q: q.name):
            if p.is_dir():
                walk(p)
            elif p.name == "groundtruth.csv":
                for line in p.read_text(errors="replace").splitlines():
                    f = line.strip().split(",")
                    if len(f) < 3 or "." not in f[0]:
                        continue
                    img = d / "images" / f[0]
                    if img.is_file():
                        out.append(dict(image=img, plate=normalise(f[2]), bbox=None, group=_group(root, d)))
            elif p.suffix == ".txt":
                try:
                    f = p.read_text().split()
                except (OSError, UnicodeDecodeError):
                    continue
                if len(f) < 6:
                    continue
                try:
                    x, y, w, h = (float(v) for v in f[1:5])
                except ValueError:
                    continue
                img = d / f[0]
                if not img.is_file():
                    img = p.with_suffix(".jpg")
                if img.is_file():
                    out.append(dict(image=img, plate=normalise(f[5]), bbox=(x, y, x + w, y + h), group=_group(root, d)))

    walk(root)
    out.sort(key=lambda s: s["image"].parts)  # Rust PathBuf order: component-wise
    return out


# ---------------------------------------------------------------- metrics (as eval.rs)

def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        cur = [i + 1] * (len(b) + 1)
        for j, cb in enumerate(b):
            cur[j + 1] = min(prev[j] + (ca != cb), prev[j + 1] + 1, cur[j] + 1)
        prev = cur
    return prev[len(b)]


def percentile(v: list[float], p: float) -> float:
    if not v:
        return 0.0
    v = sorted(v)
    i = math.floor((len(v) - 1) * p + 0.5)  # Rust f64::round (half away from zero)
    return v[i]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def o0(s: str) -> str:
    return s.replace("O", "0")


def scores(items: list[dict]) -> dict:
    n = len(items)
    if n == 0:
        return dict(frames=0, detect_recall=None, detect_recall_iou03=None, exact=0.0, exact_o0=0.0, cer=0.0,
                    latency_ms=dict(p50=0.0, p95=0.0))
    exact = sum(o["predicted"] == o["truth"] for o in items)
    exact0 = sum(o["predicted"] is not None and o0(o["predicted"]) == o0(o["truth"]) for o in items)
    cer = sum(edit_distance(o["predicted"] or "", o["truth"]) / max(len(o["truth"]), 1) for o in items) / n
    lab = [o for o in items if o["det"] is not None]
    rec = lambda k: (sum(o["det"][k] for o in lab) / len(lab)) if lab else None  # noqa: E731
    lat = [o["ms"] for o in items]
    return dict(frames=n, detect_recall=rec(0), detect_recall_iou03=rec(1), exact=exact / n, exact_o0=exact0 / n,
                cer=cer, latency_ms=dict(p50=percentile(lat, 0.5), p95=percentile(lat, 0.95)))


# ---------------------------------------------------------------- plate rule

def quad_height(q) -> float:
    d = lambda a, b: ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5  # noqa: E731
    return (d(q[0], q[3]) + d(q[1], q[2])) / 2.0


def pick_plate(txts, rec_scores, boxes):
    """The documented rule; returns (plate, raw text, score) or None."""
    best = None
    for raw, sc, q in zip(txts, rec_scores, boxes):
        if sc < MIN_REC_SCORE or ":" in raw:
            continue
        t = normalise(raw)
        if not (MIN_LEN <= len(t) <= MAX_LEN) or not any(c.isalpha() for c in t) or not any(c.isdigit() for c in t):
            continue
        key = sc * quad_height(q)
        if best is None or key > best[2]:
            best = (t, raw, key)
    return best


# ---------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of tables")
    ap.add_argument("--limit", type=int, help="evaluate only the first N samples (same order as lotsense)")
    ap.add_argument("--outcomes", type=Path, help="also write per-sample outcomes to this JSON file")
    ap.add_argument("--det-model", type=Path, default=DEFAULT_DET)
    ap.add_argument("--rec-model", type=Path, default=DEFAULT_REC)
    ap.add_argument("--det-limit-type", choices=["max", "min"], default="max")
    ap.add_argument("--det-limit-side", type=int, default=960)
    ap.add_argument("--rapidocr-defaults", action="store_true",
                    help="RapidOCR's own detector input size (limit_type min, 736) instead of max 960")
    a = ap.parse_args()
    if a.rapidocr_defaults:
        a.det_limit_type, a.det_limit_side = "min", 736

    import cv2
    import onnxruntime
    from importlib.metadata import version
    from rapidocr import RapidOCR

    cv2.setNumThreads(1)
    params = {
        "Global.use_cls": False,
        "Global.text_score": 0.0,  # the plate rule applies 0.5 itself; keeps every box for recall
        "Global.log_level": "error",  # an empty frame is logged as a warning
        "Det.model_path": str(a.det_model),
        "Rec.model_path": str(a.rec_model),
        "Det.limit_type": a.det_limit_type,
        "Det.limit_side_len": a.det_limit_side,
        "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    engine = RapidOCR(params=params)
    engine._load_det_model()  # RapidOCR loads lazily: keep loading out of the timings
    engine._load_rec_model()
    # Time the two onnxruntime calls separately, so that RapidOCR's own pre/post-processing
    # (everything else inside its call) can be compared with lotsense's.
    infer_ms = {"det": 0.0, "rec": 0.0}

    class Timed:
        def __init__(self, inner, key):
            self.inner, self.key = inner, key

        def __call__(self, x):
            t = time.perf_counter()
            try:
                return self.inner(x)
            finally:
                infer_ms[self.key] += (time.perf_counter() - t) * 1000.0

        def __getattr__(self, name):
            return getattr(self.inner, name)

    engine.text_det.session = Timed(engine.text_det.session, "det")
    engine.text_rec.session = Timed(engine.text_rec.session, "rec")

    samples = load_dataset(a.data)
    if not samples:
        sys.exit(f"no labelled samples under {a.data}")
    if a.limit is not None:
        samples = samples[: a.limit]

    show = sys.stderr.isatty() and not os.environ.get("NO_PROGRESS")
    outcomes = []
    stage = {k: [] for k in ("detect_infer", "detect_prepost", "read_infer", "read_prepost", "crop_other", "prepost_total")}
    t_all = time.perf_counter()
    for i, s in enumerate(samples):
        img = cv2.imread(str(s["image"]), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
        if img is None:
            sys.exit(f"{s['image']}: cannot decode image")
        infer_ms["det"] = infer_ms["rec"] = 0.0
        t0 = time.perf_counter()
        res = engine(img)
        ms = (time.perf_counter() - t0) * 1000.0
        boxes = [] if getattr(res, "boxes", None) is None else res.boxes.tolist()
        txts = list(getattr(res, "txts", None) or [])
        rscores = list(getattr(res, "scores", None) or [])
        el = getattr(res, "elapse_list", None)
        if el:  # [det, cls, rec] seconds, each including its pre/post-processing
            det_ms, rec_ms = el[0] * 1000.0, el[2] * 1000.0
            stage["detect_infer"].append(infer_ms["det"])
            stage["detect_prepost"].append(det_ms - infer_ms["det"])
            stage["read_infer"].append(infer_ms["rec"])
            stage["read_prepost"].append(rec_ms - infer_ms["rec"])
            stage["crop_other"].append(max(ms - det_ms - rec_ms, 0.0))
            stage["prepost_total"].append(ms - infer_ms["det"] - infer_ms["rec"])
        det = None
        if s["bbox"] is not None:
            best = max((iou((min(p[0] for p in q), min(p[1] for p in q), max(p[0] for p in q), max(p[1] for p in q)),
                            s["bbox"]) for q in boxes), default=0.0)
            det = (best >= 0.5, best >= 0.3)
        pick = pick_plate(txts, rscores, boxes)
        outcomes.append(dict(image=str(s["image"]), group=s["group"], truth=s["plate"],
                             predicted=pick[0] if pick else None, raw=pick[1] if pick else None,
                             detected=det[0] if det else None, det=det, ms=ms,
                             texts=[[t, round(float(c), 4)] for t, c in zip(txts, rscores)]))
        if show:
            print(f"\r{i + 1}/{len(samples)} frames", end="", file=sys.stderr, flush=True)
    if show:
        print("\r" + " " * 40 + "\r", end="", file=sys.stderr)

    by_group = {g: scores([o for o in outcomes if o["group"] == g]) for g in sorted({o["group"] for o in outcomes})}
    report = scores(outcomes)
    report["by_group"] = by_group
    report["stages_ms"] = {k: round(statistics.median(v), 2) for k, v in stage.items() if v}
    report["settings"] = {
        "engine": f"rapidocr {version('rapidocr')} "
                  f"onnxruntime {onnxruntime.__version__} opencv {cv2.__version__}",
        "det_limit": f"{a.det_limit_type} {a.det_limit_side}",
        "detector": a.det_model.name,
        "reader": a.rec_model.name,
        "threads": "ort intra 1 inter 1, cv2 1",
        "plate_rule": "rec score>=0.5, no ':', A-Z0-9, 4-8 chars, >=1 letter and digit, max score*height",
        "wall_s": f"{time.perf_counter() - t_all:.1f}",
    }
    if a.outcomes:
        a.outcomes.write_text(json.dumps([{k: v for k, v in o.items() if k != "det"} for o in outcomes], indent=1))
    if a.json:
        print(json.dumps(report, indent=2))
        return
    pct = lambda v: "    -" if v is None else f"{v * 100:5.1f}%"  # noqa: E731
    print(f"{'group':<28} {'frames':>6} {'det@0.5':>8} {'det@0.3':>8} {'exact':>8} {'exact_o0':>8} {'cer':>6} {'p50 ms':>8} {'p95 ms':>8}")
    for name, s in list(by_group.items()) + [("ALL", report)]:
        print(f"{name:<28} {s['frames']:>6} {pct(s['detect_recall']):>8} {pct(s['detect_recall_iou03']):>8} "
              f"{pct(s['exact']):>8} {pct(s['exact_o0']):>8} {s['cer']:>6.3f} {s['latency_ms']['p50']:>8.0f} "
              f"{s['latency_ms']['p95']:>8.0f}")
    print("median ms per stage: " + ", ".join(f"{k} {v:.1f}" for k, v in report["stages_ms"].items()))


if __name__ == "__main__":
    main()
