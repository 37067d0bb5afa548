"""ONNX export of the plate proposal network (the contract in models/plates/MODEL_CARD.md)."""
import logging

import numpy as np
import onnx
import torch

from common import Exported

OPSET = 17


def export_onnx(net, path, doc=""):
    """opset 17, default domain only; input `image` [1,3,H,W] (H, W dynamic), outputs `heatmap` [1,1,H/4,W/4]
    and `size` [1,2,H/4,W/4]. BatchNorm folded by the exporter's optimiser; checked with onnx.checker."""
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    m = Exported(net).eval()
    x = torch.zeros(1, 3, 384, 640)
    hq = torch.export.Dim("hq", min=1, max=128)
    wq = torch.export.Dim("wq", min=1, max=128)
    prog = torch.onnx.export(m, (x,), None, input_names=["image"], output_names=["heatmap", "size"],
                             opset_version=OPSET, dynamo=True,
                             dynamic_shapes={"image": {2: 32 * hq, 3: 32 * wq}}, optimize=True, verbose=False)
    model = prog.model_proto
    # readable dimension names
    ren = {}
    for v in model.graph.input:
        d = v.type.tensor_type.shape.dim
        ren[d[2].dim_param], ren[d[3].dim_param] = "H", "W"
    for v in model.graph.output:
        d = v.type.tensor_type.shape.dim
        d[0].dim_value = 1
        if d[2].dim_param or not d[2].dim_value:
            d[2].dim_param = "H/4"
        if d[3].dim_param or not d[3].dim_value:
            d[3].dim_param = "W/4"
    for v in model.graph.input:
        for dd in v.type.tensor_type.shape.dim:
            if dd.dim_param in ren:
                dd.dim_param = ren[dd.dim_param]
    del model.graph.value_info[:]  # shapes in symbolic names of the exporter; not needed
    model.ir_version = 8
    model.producer_name = "lotsense-training-plates (torch.onnx.export)"
    model.producer_version = torch.__version__
    model.doc_string = doc
    del model.metadata_props[:]
    g = model.graph
    for item in (*g.node, *g.input, *g.output, *g.initializer):
        del item.metadata_props[:]
        item.doc_string = ""
    assert all(op.domain in ("", "ai.onnx") for op in model.opset_import), model.opset_import
    assert all(n.domain in ("", "ai.onnx") for n in g.node)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return model


def io_signature(path):
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, 384, 640), np.float32)
    outs = s.run(None, {"image": x})
    return ([(i.name, i.type, i.shape) for i in s.get_inputs()],
            [(o.name, o.type, o.shape, list(r.shape)) for o, r in zip(s.get_outputs(), outs)])
