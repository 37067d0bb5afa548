"""Tiny CNN in JAX, and its ONNX export (graph written with onnx.helper; batch-norm folded into convs).

Layers (NCHW, input [N, 3, 32, 64] RGB in [0, 1]):
  normalise (x - MEAN) / STD            (inside the graph)
  conv3x3/2  3 -> C1, BN, ReLU          -> 16 x 32
  conv3x3/2 C1 -> C2, BN, ReLU          ->  8 x 16
  conv3x3/2 C2 -> C3, BN, ReLU          ->  4 x  8
  conv3x3/1 C3 -> C4, BN, ReLU          ->  4 x  8
  global average pool, dropout (train), linear C4 -> 1, sigmoid -> p_occupied [N]
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

MEAN = 0.45
STD = 0.25
# (in, out, stride)
def arch(widths=(16, 24, 32, 48)):
    c1, c2, c3, c4 = widths
    return [(3, c1, 2), (c1, c2, 2), (c2, c3, 2), (c3, c4, 1)]


def init_params(key, layers):
    params, state = {"convs": []}, {"bn": []}
    for cin, cout, _ in layers:
        key, k = jax.random.split(key)
        fan_in = cin * 9
        w = jax.random.normal(k, (cout, cin, 3, 3)) * np.sqrt(2.0 / fan_in)
        params["convs"].append({"w": w, "gamma": jnp.ones(cout), "beta": jnp.zeros(cout)})
        state["bn"].append({"mean": jnp.zeros(cout), "var": jnp.ones(cout)})
    key, k = jax.random.split(key)
    c4 = layers[-1][1]
    params["fc_w"] = jax.random.normal(k, (c4,)) * np.sqrt(1.0 / c4)
    params["fc_b"] = jnp.zeros(())
    return params, state


def _conv(x, w, stride):
    return jax.lax.conv_general_dilated(
        x, w, (stride, stride), ((1, 1), (1, 1)), dimension_numbers=("NCHW", "OIHW", "NCHW"))


def forward(params, state, x, layers, train=False, key=None, momentum=0.9, dropout=0.2):
    """-> (logits [N], new_state)."""
    x = (x - MEAN) / STD
    new_bn = []
    for p, s, (_, _, stride) in zip(params["convs"], state["bn"], layers):
        x = _conv(x, p["w"], stride)
        if train:
            mean = x.mean(axis=(0, 2, 3))
            var = x.var(axis=(0, 2, 3))
            new_bn.append({"mean": momentum * s["mean"] + (1 - momentum) * mean,
                           "var": momentum * s["var"] + (1 - momentum) * var})
        else:
            mean, var = s["mean"], s["var"]
            new_bn.append(s)
        x = (x - mean[None, :, None, None]) * jax.lax.rsqrt(var[None, :, None, None] + 1e-5)
        x = x * p["gamma"][None, :, None, None] + p["beta"][None, :, None, None]
        x = jax.nn.relu(x)
    x = x.mean(axis=(2, 3))
    if train and dropout > 0:
        keep = jax.random.bernoulli(key, 1 - dropout, x.shape)
        x = jnp.where(keep, x / (1 - dropout), 0.0)
    return x @ params["fc_w"] + params["fc_b"], {"bn": new_bn}


def macs(layers, h=32, w=64):
    total = 0
    for cin, cout, stride in layers:
        h, w = (h + stride - 1) // stride, (w + stride - 1) // stride
        total += h * w * cout * cin * 9
    return total + layers[-1][1]


def export_onnx(params, state, layers, path, opset=17, doc=""):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits, nodes = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        return name

    nodes.append(helper.make_node("Sub", ["patches", const("mean", np.array([MEAN] * 3).reshape(1, 3, 1, 1))], ["x_sub"]))
    nodes.append(helper.make_node("Mul", ["x_sub", const("inv_std", np.array([1 / STD] * 3).reshape(1, 3, 1, 1))], ["x0"]))
    cur = "x0"
    for i, (p, s, (_, _, stride)) in enumerate(zip(params["convs"], state["bn"], layers)):
        w = np.asarray(p["w"], np.float64)
        scale = np.asarray(p["gamma"], np.float64) / np.sqrt(np.asarray(s["var"], np.float64) + 1e-5)
        wf = w * scale[:, None, None, None]
        bf = np.asarray(p["beta"], np.float64) - np.asarray(s["mean"], np.float64) * scale
        nodes.append(helper.make_node(
            "Conv", [cur, const(f"conv{i}_w", wf), const(f"conv{i}_b", bf)], [f"conv{i}"],
            kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[stride, stride]))
        nodes.append(helper.make_node("Relu", [f"conv{i}"], [f"relu{i}"]))
        cur = f"relu{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [cur], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["feat"], axis=1))
    c4 = layers[-1][1]
    nodes.append(helper.make_node("Gemm", ["feat", const("fc_w", np.asarray(params["fc_w"]).reshape(1, c4)),
                                           const("fc_b", np.asarray(params["fc_b"]).reshape(1))], ["logit2d"], transB=1))
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "flat_shape"))
    nodes.append(helper.make_node("Reshape", ["logit2d", "flat_shape"], ["logit"]))
    nodes.append(helper.make_node("Sigmoid", ["logit"], ["p_occupied"]))

    graph = helper.make_graph(
        nodes, "bay_classifier",
        [helper.make_tensor_value_info("patches", TensorProto.FLOAT, ["N", 3, 32, 64])],
        [helper.make_tensor_value_info("p_occupied", TensorProto.FLOAT, ["N"])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="lotsense-training-occupancy", producer_version="1")
    model.ir_version = 8  # readable by any onnxruntime >= 1.10
    model.doc_string = doc
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model
