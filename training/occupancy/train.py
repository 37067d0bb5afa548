#!/usr/bin/env python3
"""Train lotsense's parking-bay occupancy classifier and export it to ONNX.

    python training/occupancy/train.py                 # from the repository root
    python training/occupancy/train.py --data ../shared/data --out models/occupancy/bay_classifier.onnx

The held-out validation is the manifest's ``val`` split (17 bays never used for training, in any form).
The exported model is the one after the last step: validation numbers are reported, never used to pick a
checkpoint. See README.md in this folder.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

# 2 cores shared with a Rust build: keep every thread pool at 2 (must be set before torch/numpy start).
# CPU only: the PyPI torch wheel is a CUDA build; hiding every GPU means CUDA is never initialised.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
# torch's OpenMP threads spin while waiting for each other; with the augmentation workers (and a build)
# on the same 2 cores that spinning tripled the step time. Passive waiting: measured 3x faster here.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ["CUDA_VISIBLE_DEVICES"] = ""

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

import augment  # noqa: E402
import data as D  # noqa: E402
import model as M  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"),
                    help="shared data folder (default: ../shared/data relative to the repository root)")
    ap.add_argument("--out", default=os.path.join(REPO, "models", "occupancy", "bay_classifier.onnx"))
    ap.add_argument("--metrics", default=os.path.join(HERE, "metrics.json"))
    ap.add_argument("--seed", type=int, default=20251121)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--widths", default="16,24,32,48")
    ap.add_argument("--romanian-frac", type=float, default=0.15,
                    help="share of occupied samples drawn from the dash-cam car crops")
    ap.add_argument("--synthetic-frac", type=float, default=0.1,
                    help="share of free samples drawn from procedural ground textures (0 disables)")
    ap.add_argument("--no-video", action="store_true", help="do not cut extra training crops from carPark.mp4")
    ap.add_argument("--no-extra-bays", action="store_true", help="ignore extra_bays.csv")
    ap.add_argument("--no-romanian", action="store_true")
    ap.add_argument("--video-frames", default="0:849:70", help="start:stop:step of video frames to cut")
    ap.add_argument("--eval-every", type=int, default=1000, help="log held-out numbers (logging only)")
    ap.add_argument("--workers", type=int, default=2, help="augmentation worker processes (0: in-process)")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads (training and evaluation)")
    return ap.parse_args(argv)


def build_sources(args, log):
    split = D.manifest_split_bays(args.data)
    val_bays = {b for b, (s, _) in split.items() if s == "val"}
    src = D.Sources()
    D.add_manifest_patches(src, args.data)
    log(f"manifest train patches: {len(src.label)}")
    if not args.no_video:
        labels = {b: lab for b, (s, lab) in split.items() if s == "train"}
        extra = {} if args.no_extra_bays else D.read_extra_bays()
        assert not (set(extra) & set(split)), "extra_bays.csv must not list manifest bays"
        labels.update(extra)
        assert not (set(labels) & val_bays)
        a, b, c = (int(v) for v in args.video_frames.split(":"))
        frames = D.read_video_frames(args.data, range(a, b, c))
        n0 = len(src.label)
        D.add_video(src, args.data, frames, labels)
        log(f"video crops: {len(src.label) - n0} ({len(labels)} bays incl. {len(extra)} extra, {len(frames)} frames)")
    if args.synthetic_frac > 0:
        n0 = len(src.label)
        D.add_synthetic_ground(src, 600, args.seed)
        log(f"synthetic ground (free): {len(src.label) - n0}")
    if not args.no_romanian:
        n0 = len(src.label)
        D.add_romanian(src, args.data)
        log(f"romanian car crops: {len(src.label) - n0}")
    src.finalize()
    for g in set(src.group):
        assert not (g.startswith("bay") and int(g[3:]) in val_bays), "validation bay leaked into training"
    return src


class Sampler:
    """Balanced batches: half free, half occupied; bays drawn uniformly within a class (each bay then
    gives one of its patches / video crops); dash-cam cars get a fixed share of the occupied half and
    procedural ground a fixed share of the free half."""

    def __init__(self, src, romanian_frac, synthetic_frac):
        self.src = src
        self.rom_frac = romanian_frac if (src.kind == "romanian").any() else 0.0
        self.syn_frac = synthetic_frac if (src.kind == "synthetic").any() else 0.0
        self.pools = {}
        for lab in (0, 1):
            bays = {}
            for i in np.flatnonzero((src.label == lab) & ~np.isin(src.kind, ["romanian", "synthetic"])):
                bays.setdefault(src.group[i], {}).setdefault(src.kind[i], []).append(i)
            self.pools[lab] = [list(v.values()) for _, v in sorted(bays.items())]
        self.rom = np.flatnonzero(src.kind == "romanian")
        self.syn = np.flatnonzero(src.kind == "synthetic")

    def sample(self, rng, n):
        idx, labels = [], []
        for k in range(n):
            lab = k % 2
            if lab == 1 and rng.random() < self.rom_frac:
                idx.append(int(rng.choice(self.rom)))
            elif lab == 0 and rng.random() < self.syn_frac:
                idx.append(int(rng.choice(self.syn)))
            else:
                kinds = self.pools[lab][rng.integers(len(self.pools[lab]))]
                lst = kinds[rng.integers(len(kinds))]
                idx.append(int(lst[rng.integers(len(lst))]))
            labels.append(lab)
        return np.array(idx), np.array(labels, np.float32)


_WORKER = {}


def _worker_init(src, sampler, seed, batch):
    _WORKER.update(src=src, sampler=sampler, seed=seed, batch=batch)


def _make_batch(k):
    w = _WORKER
    rng = np.random.default_rng([w["seed"], k])
    idx, y = w["sampler"].sample(rng, w["batch"])
    return augment.make_batch(rng, w["src"], idx), y


def start_pool(src, sampler, seed, batch, workers):
    """Augmentation runs in forked worker processes (started before torch spins up its threads);
    batch k only depends on (seed, k), so the run is reproducible whatever the number of workers."""
    import multiprocessing as mp

    _worker_init(src, sampler, seed, batch)
    if workers <= 0:
        return None
    return mp.get_context("fork").Pool(workers, initializer=_worker_init, initargs=(src, sampler, seed, batch))


def batch_stream(pool, steps):
    if pool is None:
        yield from map(_make_batch, range(steps))
    else:
        yield from pool.imap(_make_batch, range(steps), chunksize=4)


def metrics(p, y, thr=0.5):
    pred = (p >= thr).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum()); tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum()); fn = int(((pred == 0) & (y == 1)).sum())
    tpr = tp / max(1, tp + fn); tnr = tn / max(1, tn + fp)
    prec = tp / max(1, tp + fp)
    return {"n": int(len(y)), "accuracy": (tp + tn) / max(1, len(y)), "balanced_accuracy": (tpr + tnr) / 2,
            "f1_occupied": 2 * prec * tpr / max(1e-9, prec + tpr), "recall_occupied": tpr, "recall_free": tnr,
            "confusion": {"free_as_free": tn, "free_as_occupied": fp, "occupied_as_free": fn,
                          "occupied_as_occupied": tp}}


def per_bay(p, y, bays):
    out = []
    for b in sorted(set(bays.tolist())):
        m = bays == b
        out.append({"bay": int(b), "label": "occupied" if y[m][0] else "free", "n": int(m.sum()),
                    "accuracy": float(((p[m] >= 0.5) == (y[m] == 1)).mean()), "p_mean": float(p[m].mean()),
                    "p_min": float(p[m].min()), "p_max": float(p[m].max())})
    return out


def setup_torch(threads=2):
    """CPU, `threads` intra-op threads, deterministic kernels."""
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (e.g. main() called twice in one process)
        pass
    torch.use_deterministic_algorithms(True)
    # with deterministic algorithms on, torch also fills every new tensor with NaN (a guard against reading
    # uninitialised memory, no effect on results); that costs ~40 % of a training step here: off
    torch.utils.deterministic.fill_uninitialized_memory = False
    torch.set_default_dtype(torch.float32)


def main(argv=None):
    args = parse_args(argv)
    t_start = time.time()
    load0 = os.getloadavg()[0]
    logf = []

    def log(msg):
        line = f"[{time.time() - t_start:7.1f}s] {msg}"
        print(line, flush=True)
        logf.append(line)

    np.random.seed(args.seed)
    layers = M.arch(tuple(int(w) for w in args.widths.split(",")))
    src = build_sources(args, log)
    log(f"sources: {len(src.label)} ({int(src.label.sum())} occupied); groups {len(set(src.group))}")
    sampler = Sampler(src, args.romanian_frac, args.synthetic_frac)
    pool = start_pool(src, sampler, args.seed, args.batch, args.workers)
    setup_torch(args.threads)
    log(f"torch {torch.__version__} on cpu, {torch.get_num_threads()} threads, deterministic "
        f"{torch.are_deterministic_algorithms_enabled()}; model MACs/patch {M.macs(layers)}")
    xv, yv, bv, _ = D.load_val(args.data)
    log(f"held-out val: {len(yv)} patches from {len(set(bv.tolist()))} bays ({int(yv.sum())} occupied)")

    torch.manual_seed(args.seed)  # initial weights
    net = M.BayNet(layers, dropout=0.2)
    torch.manual_seed(args.seed + 1)  # dropout masks
    # decoupled weight decay on the convolution kernels only (not on BN, biases or the final linear layer)
    conv_w = [m.weight for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    others = [p for p in net.parameters() if all(p is not w for w in conv_w)]
    opt = torch.optim.AdamW([{"params": conv_w, "weight_decay": args.wd}, {"params": others, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)
    warm = max(1, args.steps // 20)

    def lr_at(step):
        w = min(1.0, (step + 1) / warm)
        cos = 0.5 * (1 + np.cos(np.pi * np.clip((step - warm) / max(1, args.steps - warm), 0, 1)))
        return args.lr * w * (0.02 + 0.98 * cos)

    def predict_np(x, bs=512):
        net.eval()
        with torch.inference_mode():
            p = np.concatenate([torch.sigmoid(net(torch.from_numpy(np.ascontiguousarray(x[i:i + bs])))).numpy()
                                for i in range(0, len(x), bs)])
        net.train()
        return p

    losses, accs = [], []
    net.train()
    t_train = time.time()
    for k, (xb, yb) in enumerate(batch_stream(pool, args.steps)):
        for g in opt.param_groups:
            g["lr"] = lr_at(k)
        x, y = torch.from_numpy(xb), torch.from_numpy(yb)
        logits = net(x)
        loss = F.binary_cross_entropy_with_logits(logits, y * 0.95 + 0.025)  # label smoothing 0.05
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item()); accs.append(((logits.detach() > 0) == (y > 0.5)).float().mean().item())
        if (k + 1) % 250 == 0:
            log(f"step {k + 1}/{args.steps} loss {np.mean(losses[-250:]):.4f} train-acc {np.mean(accs[-250:]):.3f}"
                f" ({(time.time() - t_train) / (k + 1) * 1000:.0f} ms/step)")
        if args.eval_every and (k + 1) % args.eval_every == 0 and k + 1 < args.steps:
            m = metrics(predict_np(xv), yv)
            log(f"  [held-out, logging only] acc {m['accuracy']:.3f} bal {m['balanced_accuracy']:.3f}")
    train_s = time.time() - t_train
    if pool is not None:
        pool.close()
        pool.join()  # reaped, so that their CPU time counts in cpu_seconds
    log(f"training done in {train_s:.0f}s")

    pv = predict_np(xv)
    res = {"held_out_manifest_val": metrics(pv, yv), "held_out_per_bay": per_bay(pv, yv, bv)}
    # second view of the same held-out bays: cut from the 1280x720 video (lower resolution, real misalignment)
    try:
        split = D.manifest_split_bays(args.data)
        vb = {b: lab for b, (s, lab) in split.items() if s == "val"}
        frames = D.read_video_frames(args.data, range(5, 849, 40))
        vs = D.Sources(); D.add_video(vs, args.data, frames, vb); vs.finalize()
        xvv = augment.make_batch(None, vs, range(len(vs.label)), train=False)
        res["held_out_video_crops"] = metrics(predict_np(xvv), vs.label)
    except Exception as e:  # the video is optional
        log(f"video check skipped: {e}")
    pt = predict_np(augment.make_batch(None, src, np.flatnonzero(src.kind == "manifest")[::5], train=False))
    res["train_manifest_patches"] = metrics(pt, src.label[src.kind == "manifest"][::5])

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    doc = ("lotsense bay occupancy classifier. input patches [N,3,32,64] float32 RGB in [0,1], bay long axis "
           "horizontal; output p_occupied [N] float32. Apache-2.0. See models/occupancy/MODEL_CARD.md")
    net.eval()
    M.export_onnx(net, args.out, doc=doc)
    import onnx
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1
    sess = ort.InferenceSession(args.out, so, providers=["CPUExecutionProvider"])
    po = sess.run(["p_occupied"], {"patches": xv})[0]
    res["onnx_vs_torch_max_abs_diff"] = float(np.abs(po - pv).max())
    assert po.shape == (len(xv),) and res["onnx_vs_torch_max_abs_diff"] < 1e-4, res["onnx_vs_torch_max_abs_diff"]
    x400 = np.ascontiguousarray(np.resize(xv, (400, 3, 32, 64)))
    for _ in range(5):
        sess.run(None, {"patches": x400})
    ts = []
    for _ in range(50):
        t = time.perf_counter(); sess.run(None, {"patches": x400}); ts.append(time.perf_counter() - t)
    res["latency_400_bays_1_thread_ms"] = {"median": float(np.median(ts) * 1e3), "min": float(np.min(ts) * 1e3),
                                           "p90": float(np.percentile(ts, 90) * 1e3)}
    res["model"] = {"widths": args.widths, "macs_per_patch": M.macs(layers),
                    "params": M.n_params(net),
                    "onnx_bytes": os.path.getsize(args.out)}
    run_args = {k: (os.path.relpath(v, REPO) if k in ("data", "out", "metrics") else v) for k, v in vars(args).items()}
    res["run"] = {"train_seconds": train_s, "total_seconds": time.time() - t_start, "args": run_args,
                  "final_train_loss": float(np.mean(losses[-250:])), "versions": {
                      "torch": torch.__version__, "numpy": np.__version__, "onnx": onnx.__version__,
                      "onnxruntime": ort.__version__}}
    res["log"] = logf
    m = res["held_out_manifest_val"]
    log(f"held-out val: acc {m['accuracy']:.4f} bal-acc {m['balanced_accuracy']:.4f} F1(occ) {m['f1_occupied']:.4f}"
        f" confusion {m['confusion']}")
    if "held_out_video_crops" in res:
        m = res["held_out_video_crops"]
        log(f"held-out bays cut from video: acc {m['accuracy']:.4f} bal-acc {m['balanced_accuracy']:.4f}")
    log(f"onnx == torch: max |diff| {res['onnx_vs_torch_max_abs_diff']:.2e}; 400 bays, 1 thread: "
        f"median {res['latency_400_bays_1_thread_ms']['median']:.1f} ms; wrote {os.path.relpath(args.out, REPO)}")
    res["run"]["total_seconds"] = time.time() - t_start
    ru = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    res["run"]["cpu_seconds"] = sum(r.ru_utime + r.ru_stime for r in ru)  # this process + augmentation workers
    res["run"]["loadavg_1min_start_end"] = [load0, os.getloadavg()[0]]  # 2 cores shared with other work?
    with open(args.metrics, "w") as f:
        json.dump(res, f, indent=1, default=str)
    return res


if __name__ == "__main__":
    main()
