"""Tiny CNN in PyTorch, and its ONNX export (torch.onnx.export; batch-norm folded into the convolutions).

Layers (NCHW, input [N, 3, 32, 64] RGB in [0, 1]):
  normalise (x - MEAN) / STD            (inside the graph)
  conv3x3/2  3 -> C1, BN, ReLU          -> 16 x 32
  conv3x3/2 C1 -> C2, BN, ReLU          ->  8 x 16
  conv3x3/2 C2 -> C3, BN, ReLU          ->  4 x  8
  conv3x3/1 C3 -> C4, BN, ReLU          ->  4 x  8
  global average pool, dropout (train), linear C4 -> 1, sigmoid -> p_occupied [N]

`BayNet.forward` returns logits [N] (what the loss wants); `Exported` wraps an eval-mode copy with the
batch-norms folded into the convolutions and the sigmoid added: that is what goes into the ONNX file.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

MEAN = 0.45
STD = 0.25
OPSET = 17


# (in, out, stride)
def arch(widths=(16, 24, 32, 48)):
    c1, c2, c3, c4 = widths
    return [(3, c1, 2), (c1, c2, 2), (c2, c3, 2), (c3, c4, 1)]


class GlobalAvgPool(nn.Module):
    """Mean over H x W as an average pool whose kernel is the (fixed) feature-map size: exports as one
    AveragePool node, which exists unchanged in opsets 11 to 18 (AdaptiveAvgPool2d / mean export as
    ReduceMean, whose axes moved from attribute to input in opset 18, and the exporter's down-conversion
    to 17 fails on that)."""

    def forward(self, x):
        return F.avg_pool2d(x, kernel_size=tuple(x.shape[-2:]))


class BayNet(nn.Module):
    def __init__(self, layers, dropout=0.2, bn_momentum=0.1):
        super().__init__()
        self.register_buffer("mean", torch.full((1, 3, 1, 1), MEAN))
        self.register_buffer("inv_std", torch.full((1, 3, 1, 1), 1.0 / STD))
        blocks = []
        for cin, cout, stride in layers:
            blocks += [nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False),
                       nn.BatchNorm2d(cout, eps=1e-5, momentum=bn_momentum), nn.ReLU()]
        self.features = nn.Sequential(*blocks)
        self.pool = GlobalAvgPool()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(layers[-1][1], 1)
        self.reset_parameters()

    def reset_parameters(self):
        """He-normal convolutions (fan-in), N(0, 1/C4) linear weights, zero bias, BN gamma 1 / beta 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, 0.0, float(np.sqrt(1.0 / self.fc.in_features)))
        nn.init.zeros_(self.fc.bias)

    def forward(self, x):
        """x [N, 3, 32, 64] in [0, 1] -> logits [N]."""
        x = self.features((x - self.mean) * self.inv_std)
        x = torch.flatten(self.pool(x), 1)
        return self.fc(self.drop(x)).reshape(-1)


class Exported(nn.Module):
    """Eval-mode BayNet with each Conv+BN folded into one Conv with bias, and the sigmoid in the graph."""

    def __init__(self, net: BayNet):
        super().__init__()
        net = copy.deepcopy(net).eval()
        self.register_buffer("mean", net.mean.clone())
        self.register_buffer("inv_std", net.inv_std.clone())
        mods, feats = [], list(net.features)
        for i in range(0, len(feats), 3):
            conv, bn = feats[i], feats[i + 1]
            mods += [torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn), nn.ReLU()]
        self.features = nn.Sequential(*mods)
        self.pool = GlobalAvgPool()
        self.fc = net.fc
        self.eval()

    def forward(self, patches):
        x = self.features((patches - self.mean) * self.inv_std)
        x = torch.flatten(self.pool(x), 1)
        return torch.sigmoid(self.fc(x).reshape(-1))


def macs(layers, h=32, w=64):
    total = 0
    for cin, cout, stride in layers:
        h, w = (h + stride - 1) // stride, (w + stride - 1) // stride
        total += h * w * cout * cin * 9
    return total + layers[-1][1]


def n_params(net: nn.Module):
    return int(sum(p.numel() for p in net.parameters()))


def export_onnx(net: BayNet, path, doc=""):
    """Writes the ONNX file (opset 17, default domain only, input `patches` [N,3,32,64], output `p_occupied`
    [N], N dynamic) and returns the loaded onnx.ModelProto. The exported graph is checked with
    onnx.checker (full check); the caller compares it with the torch model under onnxruntime."""
    import logging

    import onnx

    # "torchvision is not installed. Skipping torchvision::nms" etc.: irrelevant here
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    m = Exported(net)
    x = torch.zeros(2, 3, 32, 64)
    n = torch.export.Dim("N", min=1, max=1 << 20)
    # The default (dynamo) exporter builds the graph at opset 18 and converts it down to 17 (it warns about
    # that); every op of this graph is the same in 17 and 18, and the assertions below check the result.
    prog = torch.onnx.export(m, (x,), None, input_names=["patches"], output_names=["p_occupied"],
                             opset_version=OPSET, dynamo=True, dynamic_shapes={"patches": {0: n}},
                             optimize=True, verbose=False)
    model = prog.model_proto
    dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]  # noqa: E731
    assert [(v.name, dims(v)) for v in model.graph.input] == [("patches", ["N", 3, 32, 64])], model.graph.input
    assert [(v.name, dims(v)) for v in model.graph.output] == [("p_occupied", ["N"])], model.graph.output
    model.ir_version = 8  # the lowest IR version for opset 17, as before (the file uses nothing newer)
    model.producer_name = "lotsense-training-occupancy (torch.onnx.export)"
    model.producer_version = torch.__version__
    model.doc_string = doc
    # exporter metadata (original node names, stack traces with source paths): not needed at runtime
    del model.metadata_props[:]
    g = model.graph
    for item in (*g.node, *g.input, *g.output, *g.value_info, *g.initializer):
        del item.metadata_props[:]
        item.doc_string = ""
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model
