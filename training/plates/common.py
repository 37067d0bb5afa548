"""Plate proposal network: model, data loading, letterbox, decoding and recall metrics.

Shared by train.py and check_onnx.py. CPU only; no absolute paths (the data lives in ../shared/data relative
to the repository root, i.e. the `shared/data` folder beside it).
"""
import glob
import os
import xml.etree.ElementTree as ET

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

STRIDE = 4
INPUT_LONG = 640  # the runtime letterboxes the frame so that its longer side is 640
BUCKETS = [(0, 16, "<16"), (16, 32, "16-32"), (32, 64, "32-64"), (64, 1e9, ">64")]
SIZE_LOG_MIN, SIZE_LOG_MAX = 0.0, 7.0  # predicted box sides are clipped to [1, 1097] input pixels


# ----------------------------------------------------------------------------------------------------- model
def cbr(ci, co, k=3, s=1, g=1, act=True):
    layers = [nn.Conv2d(ci, co, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(co)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class DS(nn.Module):
    """Depthwise k x k (stride s) + pointwise 1x1, residual when the shape is kept."""

    def __init__(self, ci, co, s=1, k=3):
        super().__init__()
        self.dw = cbr(ci, ci, k, s, g=ci)
        self.pw = cbr(ci, co, 1, act=False)
        self.res = s == 1 and ci == co

    def forward(self, x):
        y = self.pw(self.dw(x))
        return F.relu(y + x if self.res else y)


class PlateNet(nn.Module):
    """Tiny FPN-style CenterNet: backbone to stride 32, top-down merge back to stride 4, two heads.

    forward() returns raw logits (heatmap logit, log-size); `Exported` adds the contract's normalisation,
    sigmoid and exp inside the graph."""

    def __init__(self, w=(16, 24, 48, 80, 128), fpn=48):
        super().__init__()
        c1, c2, c3, c4, c5 = w
        self.stem = cbr(3, c1, 3, 2)                                           # /2
        self.s4 = nn.Sequential(DS(c1, c2, 2), DS(c2, c2))                     # /4
        self.s8 = nn.Sequential(DS(c2, c3, 2), DS(c3, c3), DS(c3, c3))         # /8
        self.s16 = nn.Sequential(DS(c3, c4, 2, 5), DS(c4, c4, 1, 5), DS(c4, c4, 1, 5))   # /16
        self.s32 = nn.Sequential(DS(c4, c5, 2, 5), DS(c5, c5, 1, 5), DS(c5, c5, 1, 5))   # /32
        self.l32, self.l16 = cbr(c5, fpn, 1), cbr(c4, fpn, 1)
        self.l8, self.l4 = cbr(c3, fpn, 1), cbr(c2, fpn, 1)
        self.m16, self.m8, self.m4 = DS(fpn, fpn, 1, 5), DS(fpn, fpn, 1, 5), DS(fpn, fpn, 1, 3)
        self.head = DS(fpn, 32, 1, 3)
        self.hm = nn.Conv2d(32, 1, 1)
        self.sz = nn.Conv2d(32, 2, 1)
        nn.init.constant_(self.hm.bias, -4.0)
        nn.init.normal_(self.hm.weight, std=0.01)
        nn.init.normal_(self.sz.weight, std=0.01)
        with torch.no_grad():
            self.sz.bias.copy_(torch.tensor([np.log(50.0), np.log(13.0)]))

    @staticmethod
    def up(x):
        return F.interpolate(x, scale_factor=2.0, mode="nearest")

    def forward(self, x):
        x = self.stem(x)
        c2 = self.s4(x)
        c3 = self.s8(c2)
        c4 = self.s16(c3)
        c5 = self.s32(c4)
        p = self.l32(c5)
        p = self.m16(self.l16(c4) + self.up(p))
        p = self.m8(self.l8(c3) + self.up(p))
        p = self.m4(self.l4(c2) + self.up(p))
        h = self.head(p)
        return self.hm(h), self.sz(h)


class Exported(nn.Module):
    """The ONNX contract: input RGB in [0,1]; outputs sigmoid heatmap and size (input pixels, exp)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, image):
        # the network is trained on the contract's input itself (RGB in [0, 1]); the first conv + BatchNorm
        # absorb any scaling, so no separate normalisation node is needed (train.py feeds the same tensor)
        hm, sz = self.net(image)
        return torch.sigmoid(hm), torch.exp(torch.clamp(sz, SIZE_LOG_MIN, SIZE_LOG_MAX))


def n_params(net):
    return int(sum(p.numel() for p in net.parameters()))


def count_macs(net, h=384, w=640):
    """Multiply-accumulates of conv layers for one [1,3,h,w] input (forward hooks)."""
    total = [0]

    def hook(m, inp, out):
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total[0] += out.numel() * k

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, h, w))
    for x in hs:
        x.remove()
    return total[0]


# ------------------------------------------------------------------------------------------------------ data
def load_voc_split(folder):
    """[(image path, boxes float32 [n,4] x0,y0,x1,y1 in original pixels)] for a Pascal VOC split folder."""
    out = []
    for xf in sorted(glob.glob(os.path.join(folder, "annots", "*.xml"))):
        r = ET.parse(xf).getroot()
        name = r.find("filename").text
        boxes = []
        for o in r.findall("object"):
            b = o.find("bndbox")
            boxes.append([float(b.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")])
        img = os.path.join(folder, "images", name)
        if not os.path.exists(img):
            img = os.path.join(folder, "images", os.path.splitext(os.path.basename(xf))[0] + ".jpg")
        out.append((img, np.array(boxes, np.float32).reshape(-1, 4)))
    return out


def load_openalpr_folder(folder):
    """openalpr-endtoend format: NAME.jpg + NAME.txt (`image x y w h PLATE`, tab separated)."""
    out = []
    for tf in sorted(glob.glob(os.path.join(folder, "*.txt"))):
        boxes = []
        img = None
        for line in open(tf):
            p = line.rstrip("\n").split("\t")
            if len(p) < 5:
                continue
            img = os.path.join(folder, p[0])
            x, y, w, h = map(float, p[1:5])
            boxes.append([x, y, x + w, y + h])
        if img is None or not os.path.exists(img):
            alt = os.path.splitext(tf)[0] + ".jpg"
            if not os.path.exists(alt):
                continue
            img = alt
        out.append((img, np.array(boxes, np.float32).reshape(-1, 4)))
    return out


def load_any(folder):
    if os.path.isdir(os.path.join(folder, "annots")):
        return load_voc_split(folder)
    return load_openalpr_folder(folder)


def letterbox(img: Image.Image, long=INPUT_LONG, mult=32):
    """The runtime's letterbox: resize keeping aspect so the longer side is `long`, pad with 0 to multiples
    of `mult` at the bottom/right. Returns (float32 [3,H,W] in [0,1], scale)."""
    w, h = img.size
    s = long / max(w, h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    r = np.asarray(img.convert("RGB").resize((nw, nh), Image.BILINEAR), np.float32) / 255.0
    H, W = -(-nh // mult) * mult, -(-nw // mult) * mult
    out = np.zeros((3, H, W), np.float32)
    out[:, :nh, :nw] = r.transpose(2, 0, 1)
    return out, s


# ------------------------------------------------------------------------------------------ decode / metric
def decode(heat, size, thr, topk):
    """heat [h,w], size [2,h,w] (numpy) -> boxes [n,4] (x0,y0,x1,y1 input px), scores [n]; 3x3 local maxima
    above thr, best topk. Same as the Rust decoder."""
    h, w = heat.shape
    p = np.pad(heat, 1, constant_values=-1.0)
    win = np.stack([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])
    peak = (heat >= win.max(0)) & (heat > thr)
    ys, xs = np.nonzero(peak)
    sc = heat[ys, xs]
    o = np.argsort(-sc, kind="stable")[:topk]
    ys, xs, sc = ys[o], xs[o], sc[o]
    cx, cy = (xs + 0.5) * STRIDE, (ys + 0.5) * STRIDE
    bw, bh = size[0, ys, xs], size[1, ys, xs]
    return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1).reshape(-1, 4), sc


def iou(a, b):
    ix = np.maximum(0, np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]))
    iy = np.maximum(0, np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]))
    inter = ix * iy
    aa = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    bb = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(aa[:, None] + bb[None, :] - inter, 1e-9)


def match(props, gts):
    """[n_props, n_gts] bool: IoU >= 0.3 or the proposal's centre inside the plate box."""
    if len(props) == 0 or len(gts) == 0:
        return np.zeros((len(props), len(gts)), bool)
    cx, cy = (props[:, 0] + props[:, 2]) / 2, (props[:, 1] + props[:, 3]) / 2
    inside = (cx[:, None] >= gts[None, :, 0]) & (cx[:, None] <= gts[None, :, 2]) & \
             (cy[:, None] >= gts[None, :, 1]) & (cy[:, None] <= gts[None, :, 3])
    return inside | (iou(props, gts) >= 0.3)


class Tally:
    """Recall per plate-width bucket (width in the 640-px input) and false proposals per frame."""

    def __init__(self):
        self.n = np.zeros(len(BUCKETS), int)
        self.hit = np.zeros(len(BUCKETS), int)
        self.fp_b = np.zeros(len(BUCKETS), int)  # false proposals bucketed by their own width
        self.frames = 0
        self.fp = 0

    def add(self, props, gts):
        m = match(props, gts)
        self.frames += 1
        for j, g in enumerate(gts):
            b = bucket(g[2] - g[0])
            self.n[b] += 1
            self.hit[b] += bool(m[:, j].any())
        for i, p in enumerate(props):
            if not m[i].any():
                self.fp += 1
                self.fp_b[bucket(p[2] - p[0])] += 1

    def recall_ge16(self):
        n = self.n[1:].sum()
        return self.hit[1:].sum() / max(n, 1)

    def summary(self):
        d = {"frames": self.frames, "plates": int(self.n.sum()),
             "recall_all": float(self.hit.sum() / max(self.n.sum(), 1)),
             "recall_ge16": float(self.recall_ge16()),
             "false_per_frame": float(self.fp / max(self.frames, 1)), "buckets": {}}
        for k, (_, _, name) in enumerate(BUCKETS):
            d["buckets"][name] = {"plates": int(self.n[k]), "hits": int(self.hit[k]),
                                  "recall": (float(self.hit[k] / self.n[k]) if self.n[k] else None),
                                  "false_per_frame": float(self.fp_b[k] / max(self.frames, 1))}
        return d

    def table(self, title=""):
        s = self.summary()
        lines = [f"{title}  frames={s['frames']} plates={s['plates']} recall(all)={s['recall_all']:.3f} "
                 f"recall(>=16px)={s['recall_ge16']:.3f} false/frame={s['false_per_frame']:.2f}",
                 "  bucket  plates  hits  recall  false/frame(by proposal width)"]
        for name, b in s["buckets"].items():
            r = "   -  " if b["recall"] is None else f"{b['recall']:.3f} "
            lines.append(f"  {name:>6}  {b['plates']:6d}  {b['hits']:4d}  {r}  {b['false_per_frame']:.2f}")
        return "\n".join(lines)


def bucket(w):
    for k, (lo, hi, _) in enumerate(BUCKETS):
        if lo <= w < hi:
            return k
    return len(BUCKETS) - 1


def run_torch(net, x):
    """x float32 [3,H,W] numpy -> (heat [h,w], size [2,h,w]) through the exported (contract) wrapper."""
    with torch.no_grad():
        hm, sz = Exported(net).eval()(torch.from_numpy(x)[None])
    return hm[0, 0].numpy(), sz[0].numpy()
