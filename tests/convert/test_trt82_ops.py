"""TensorRT 8.2 op table: every exportable zoo model passes, unsupported things are named."""

import pytest

from convert.trt82_ops import MAX_OPSET, SUPPORTED, UNSUPPORTED, check_trt82

onnx = pytest.importorskip("onnx")


def _tiny(extra_op=None, opset=13):
    from tests.fixtures.tiny import linear_onnx_bytes

    return onnx.load_from_string(linear_onnx_bytes(extra_op=extra_op, opset=opset))


def test_table_is_consistent():
    assert MAX_OPSET == 13
    assert not set(SUPPORTED) & UNSUPPORTED
    # spot checks against onnx-tensorrt docs/operators.md: in 8.2, Xor/Shrink came in 8.4, NonZero in 8.5
    for op in ("Conv", "Gemm", "MatMul", "Softmax", "Reshape", "Einsum", "GatherND", "Round", "Sign"):
        assert op in SUPPORTED
    for op in ("Xor", "Shrink", "NonZero", "Hardmax", "Mod", "OneHot", "IsInf", "Reciprocal"):
        assert op in UNSUPPORTED


def test_tiny_linear_graph_passes():
    assert check_trt82(_tiny()) == []


@pytest.mark.parametrize("op", ["Hardmax", "NonZero", "Reciprocal"])
def test_unsupported_op_is_reported_by_name(op):
    problems = check_trt82(_tiny(extra_op=op))
    assert len(problems) == 1
    assert op in problems[0] and "unsupported" in problems[0]


def test_unknown_op_is_reported():
    model = _tiny()
    model.graph.node[1].op_type = "FancyMatMul"
    (problem,) = check_trt82(model)
    assert "FancyMatMul" in problem and "not in the table" in problem


def test_opset_above_13_is_reported():
    (problem,) = check_trt82(_tiny(opset=14))
    assert "opset 14" in problem


def test_conv_weights_must_be_initializers():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [1, 1, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (problem,) = check_trt82(model)
    assert "'conv'" in problem and "initializer" in problem


def _exportable_zoo():
    try:
        from train import models
    except ImportError as exc:  # train/ not there yet
        pytest.skip("train.models is not available (%s)" % exc)
    return [entry.name for entry in models.ZOO if getattr(entry, "exportable", True)]


def test_every_exportable_zoo_model_exports_to_a_trt82_graph():
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    from convert.onnx_from_keras import SIMPLE_OPS, onnx_from_keras
    from train import models

    names = _exportable_zoo()
    assert {"mlp", "cnn"} <= set(names)
    for name in names:
        proto = onnx_from_keras(models.build(name, seed=0), name=name)
        assert check_trt82(proto) == [], name
        assert set(node.op_type for node in proto.graph.node) <= SIMPLE_OPS, name
