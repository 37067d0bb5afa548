"""Checks models/plates/plate_proposals.onnx against the torch model (training/plates/plate_net.pt), prints
its input/output signature, the recall of the proposals on a folder, and the latency.

Run from the repository root:
    .deps/venv-occ-torch/bin/python training/plates/check_onnx.py                       # Romanian valid
    .deps/venv-occ-torch/bin/python training/plates/check_onnx.py --folder ../shared/data/alpr/openalpr-endtoend/us
    .deps/venv-occ-torch/bin/python training/plates/check_onnx.py --bench 50

--folder takes a Pascal VOC split (annots/*.xml + images/) or an openalpr-endtoend folder (NAME.jpg +
NAME.txt). Frames are letterboxed exactly as the runtime does (longer side 640, zero padding bottom/right to
multiples of 32); decoding = 3x3 local maxima above --thr, best --topk, box = centre +- size/2.
"""
import argparse
import hashlib
import json
import os
import sys
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image  # noqa: E402

from common import Tally, decode, letterbox, load_any  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", default=os.path.join(ROOT, "models", "plates", "plate_proposals.onnx"))
    ap.add_argument("--torch", default=os.path.join(HERE, "plate_net.pt"), help="state dict; '' to skip")
    ap.add_argument("--folder", default=os.path.join(ROOT, "..", "shared", "data", "alpr", "romanian", "dataset",
                                                     "valid"))
    ap.add_argument("--thr", type=float, default=0.3)
    ap.add_argument("--topk", type=int, default=5)
    ap.add_argument("--bench", type=int, default=0, help="latency: N calls at 640x384, 1 intra-op thread")
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args()

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.onnx, so, providers=["CPUExecutionProvider"])
    sha = hashlib.sha256(open(args.onnx, "rb").read()).hexdigest()
    print(f"{args.onnx}\n  sha256 {sha}  {os.path.getsize(args.onnx)} bytes")
    x0 = np.zeros((1, 3, 384, 640), np.float32)
    outs = sess.run(None, {"image": x0})
    for i in sess.get_inputs():
        print(f"  input  {i.name} {i.type} {i.shape}")
    for o, r in zip(sess.get_outputs(), outs):
        print(f"  output {o.name} {o.type} {o.shape} -> {list(r.shape)} at 640x384")
    result = {"sha256": sha, "thr": args.thr, "topk": args.topk}

    net = None
    if args.torch and os.path.exists(args.torch):
        import torch
        from common import PlateNet, run_torch
        torch.set_num_threads(1)
        net = PlateNet()
        net.load_state_dict(torch.load(args.torch, map_location="cpu"))
        net.eval()

    data = load_any(args.folder)
    tally = Tally()
    maxdiff = [0.0, 0.0]
    for path, boxes in data:
        x, s = letterbox(Image.open(path))
        heat, size = sess.run(None, {"image": x[None]})
        heat, size = heat[0, 0], size[0]
        if net is not None:
            th, ts = run_torch(net, x)
            maxdiff[0] = max(maxdiff[0], float(np.abs(th - heat).max()))
            maxdiff[1] = max(maxdiff[1], float((np.abs(ts - size) / ts).max()))
        props, _ = decode(heat, size, args.thr, args.topk)
        tally.add(props, boxes * s)
    if net is not None:
        print(f"  onnx vs torch: max |heatmap diff| {maxdiff[0]:.2e}, max relative size diff {maxdiff[1]:.2e}")
        result["max_abs_heatmap_diff"], result["max_rel_size_diff"] = maxdiff
    print(tally.table(f"{args.folder}  thr={args.thr} top{args.topk}"))
    result["recall"] = tally.summary()

    if args.bench:
        x = np.random.default_rng(0).random((1, 3, 384, 640), dtype=np.float32)
        for _ in range(5):
            sess.run(None, {"image": x})
        ts = []
        for _ in range(args.bench):
            t = time.perf_counter()
            sess.run(None, {"image": x})
            ts.append((time.perf_counter() - t) * 1000)
        ts = np.array(ts)
        print(f"  latency 640x384, 1 thread, {args.bench} calls: median {np.median(ts):.2f} ms "
              f"(p10 {np.percentile(ts, 10):.2f}, p90 {np.percentile(ts, 90):.2f}, min {ts.min():.2f})")
        result["latency_ms"] = {"median": float(np.median(ts)), "p10": float(np.percentile(ts, 10)),
                                "p90": float(np.percentile(ts, 90)), "min": float(ts.min()), "calls": args.bench}
    if args.json:
        json.dump(result, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
