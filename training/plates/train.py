"""Trains the plate proposal network on the Romanian `train` split, validates on `valid`, exports
models/plates/plate_proposals.onnx. CPU only.

Run from the repository root:
    .deps/venv-occ-torch/bin/python training/plates/train.py            # see --help
"""
import argparse
import copy
import json
import math
import os
import sys
import time

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from augment import PlateSamples  # noqa: E402
from common import (PlateNet, Tally, count_macs, decode, letterbox, load_voc_split, n_params,  # noqa: E402
                    run_torch)
from export import export_onnx  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def focal_loss(logit, gt, valid):
    p = torch.sigmoid(logit).clamp(1e-4, 1 - 1e-4)
    pos = (gt >= 0.999).float()
    neg = (1 - pos) * valid
    pl = torch.log(p) * (1 - p) ** 2 * pos
    nl = torch.log(1 - p) * p ** 2 * (1 - gt) ** 4 * neg
    return -(pl.sum() + nl.sum()) / pos.sum().clamp(min=1)


def size_loss(pred, tgt, wt):
    return (F.l1_loss(pred, tgt, reduction="none").sum(1, keepdim=True) * wt).sum() / wt.sum().clamp(min=1)


def evaluate(net, val, thrs=(0.1, 0.2, 0.3, 0.4, 0.5), topk=5):
    net.eval()
    tallies = {t: Tally() for t in thrs}
    for x, s, boxes in val:
        heat, size = run_torch(net, x)
        for t in thrs:
            props, _ = decode(heat, size, t, topk)
            tallies[t].add(props, boxes * s)
    return tallies


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "alpr", "romanian", "dataset"))
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "plates", "plate_proposals.onnx"))
    ap.add_argument("--steps", default="auto",
                    help="number of steps (step-based cosine schedule, reproducible), or 'auto': the schedule "
                         "runs on the wall clock and training stops after --budget-min (the step count is logged)")
    ap.add_argument("--budget-min", type=float, default=25.0, help="training wall budget for --steps auto")
    ap.add_argument("--first-export-min", type=float, default=9.0,
                    help="export an early model (EMA weights) after this many minutes; 0 = off")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--synth-p", type=float, default=0.5)
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument("--distract-p", type=float, default=0.0,
                    help="probability of drawing non-plate text (timestamps, signs) into a sample as negatives")
    ap.add_argument("--init", default=None, help="start from these weights (a plate_net.pt) instead of scratch")
    args = ap.parse_args()

    t_start = time.time()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    train = load_voc_split(os.path.join(args.data, "train"))
    valid = load_voc_split(os.path.join(args.data, "valid"))
    frames = []
    for p, b in train:
        im = Image.open(p).convert("RGB")
        frames.append(([im, im.reduce(2), im.reduce(4)], b))
    val = []
    for p, b in valid:
        x, s = letterbox(Image.open(p))
        val.append((x, s, b))
    print(f"train frames {len(frames)} plates {sum(len(b) for _, b in frames)}; valid frames {len(val)} "
          f"plates {sum(len(b) for *_, b in val)}; load {time.time() - t_start:.1f}s", flush=True)

    net = PlateNet()
    if args.init:
        net.load_state_dict(torch.load(args.init, map_location="cpu"))
        print(f"initialised from {args.init}", flush=True)
    print(f"params {n_params(net)}  MACs@640x384 {count_macs(net) / 1e6:.1f}M", flush=True)
    net = net.train().to(memory_format=torch.channels_last)
    ema = copy.deepcopy(net).eval()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)

    max_steps = 100000 if args.steps == "auto" else int(args.steps)
    ds = PlateSamples(frames, max_steps * args.batch, args.seed, crop=args.crop, synth_p=args.synth_p,
                     distract_p=args.distract_p)
    dl = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=False, num_workers=args.workers,
                                     persistent_workers=args.workers > 0, prefetch_factor=4 if args.workers else None,
                                     worker_init_fn=lambda _: torch.set_num_threads(1))
    steps = None if args.steps == "auto" else max_steps
    warm = 50
    log = []
    first_done = args.first_export_min <= 0
    t_train = time.time()
    best = None
    step = 0
    for x, hm, sz, wt, valid_m in dl:
        if steps is None:  # wall-clock schedule (the 2 cores are shared, so the step rate is not known ahead)
            frac = (time.time() - t_train) / (args.budget_min * 60)
            total = max_steps
            if frac >= 1:
                break
        else:
            total = steps
            if step >= total:
                break
            frac = step / total
        lr = args.lr * min(1.0, (step + 1) / warm) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        x = x.contiguous(memory_format=torch.channels_last)
        lh, ls = net(x)
        l_hm = focal_loss(lh, hm, valid_m)
        l_sz = size_loss(ls, sz, wt)
        loss = l_hm + l_sz
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 10.0)
        opt.step()
        d = min(0.998, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pn in zip(ema.parameters(), net.parameters()):
                pe.mul_(d).add_(pn.detach(), alpha=1 - d)
            for be, bn in zip(ema.buffers(), net.buffers()):
                be.copy_(bn)
        step += 1
        if step % 20 == 0:
            el = time.time() - t_train
            print(f"step {step} loss {loss.item():.3f} hm {l_hm.item():.3f} sz {l_sz.item():.3f} "
                  f"lr {lr:.2e} {el / 60:.1f}min", flush=True)
            log.append({"step": step, "loss": loss.item(), "hm": l_hm.item(), "sz": l_sz.item(), "min": el / 60})
        if not first_done and time.time() - t_train > args.first_export_min * 60:
            first_done = True
            e = copy.deepcopy(ema).to(memory_format=torch.contiguous_format).eval()
            export_onnx(e, args.out, doc=f"lotsense plate proposals (early export, step {step})")
            tl = evaluate(e, val)
            print(f"EARLY EXPORT at step {step} -> {args.out}\n" + tl[0.3].table("valid thr=0.3"), flush=True)
        if step % args.val_every == 0:
            e = copy.deepcopy(ema).to(memory_format=torch.contiguous_format).eval()
            tl = evaluate(e, val, thrs=(0.3,))
            print(tl[0.3].table(f"valid step {step} thr=0.3"), flush=True)

    train_s = time.time() - t_train
    final = copy.deepcopy(ema).to(memory_format=torch.contiguous_format).eval()
    torch.save(final.state_dict(), os.path.join(HERE, "plate_net.pt"))
    export_onnx(final, args.out, doc=f"lotsense plate proposal network, {step} steps, seed {args.seed}")
    tl = evaluate(final, val)
    res = {}
    for t, tal in tl.items():
        print(tal.table(f"valid thr={t} top5"), flush=True)
        res[str(t)] = tal.summary()
    a = dict(vars(args), data=os.path.relpath(args.data, ROOT), out=os.path.relpath(args.out, ROOT))
    out = {"args": a, "steps": step, "train_s": train_s, "wall_s": time.time() - t_start,
           "params": n_params(final), "macs_640x384": count_macs(final), "valid": res, "log": log}
    json.dump(out, open(os.path.join(HERE, "metrics.json"), "w"), indent=1)
    print(f"done: {step} steps, training {train_s / 60:.1f} min, wall {(time.time() - t_start) / 60:.1f} min")


if __name__ == "__main__":
    main()
