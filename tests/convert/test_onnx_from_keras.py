"""onnx_from_keras: contract (names, opset, IR, dynamic batch, metadata), simple ops, parity, FP16."""

import json

import numpy as np
import pytest

from tests.convert.conftest import needs_workstation_stack

needs_workstation_stack()

import onnx  # noqa: E402

from convert import onnx_from_keras as ok  # noqa: E402
from edge_runtime import manifest as mf  # noqa: E402


@pytest.fixture(scope="module")
def exported(small_cnn):
    manifest = mf.new_manifest("small_cnn")
    manifest["created_by"] = ok.producer_versions()
    proto = ok.onnx_from_keras(small_cnn, manifest=manifest)
    return proto, manifest


@pytest.fixture(scope="module")
def model_paths(exported, tmp_path_factory):
    proto, _ = exported
    folder = tmp_path_factory.mktemp("onnx")
    fp32, fp16 = str(folder / "model.onnx"), str(folder / "model.fp16.onnx")
    onnx.save(proto, fp32)
    onnx.save(ok.fp16_from_fp32(proto), fp16)
    return fp32, fp16


def _inputs(digits):
    return digits[0].astype(np.float32)[..., None] / 255.0


def ort_run(path, x):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]


def cv_run(path, x):
    import cv2

    net = cv2.dnn.readNetFromONNX(path)
    net.setInput(np.ascontiguousarray(x))
    return net.forward().reshape(len(x), -1)


def test_graph_contract(exported):
    proto, _ = exported
    assert proto.ir_version == 7
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 13)]
    (inp,), (out,) = proto.graph.input, proto.graph.output
    assert inp.name == "image" and out.name == "probabilities"
    assert inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert dims == ["N", 28, 28, 1]
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim] == ["N", 10]
    onnx.checker.check_model(proto)


def test_graph_uses_only_simple_ops_without_flatten_chain(exported):
    proto, _ = exported
    ops = [node.op_type for node in proto.graph.node]
    assert set(ops) <= ok.SIMPLE_OPS
    # the dynamic Shape->Gather->...->Reshape chain, the NHWC Transpose and Identity are gone
    assert not {"Shape", "Gather", "Concat", "Slice", "Cast", "Identity", "Transpose", "MatMul"} & set(ops)
    assert ops.count("Reshape") == 2  # input to NCHW, and the flatten (constant [-1, K])
    flatten = [n for n in proto.graph.node if n.op_type == "Reshape"][1]
    shape = [onnx.numpy_helper.to_array(i) for i in proto.graph.initializer if i.name == flatten.input[1]][0]
    assert shape.tolist() == [-1, 8 * 5 * 5]
    # BatchNormalization (Mul + Add) folded into the Dense layer: Gemm, Relu, Gemm, Softmax at the end
    assert ops[-4:] == ["Gemm", "Relu", "Gemm", "Softmax"]


def test_metadata_props_mirror_manifest(exported):
    proto, manifest = exported
    props = {p.key: json.loads(p.value) for p in proto.metadata_props}
    for key in ("name", "input", "output", "preprocess", "labels", "created_by"):
        assert props[key] == manifest[key], key
    assert props["created_by"]["tf2onnx"] and props["created_by"]["tensorflow"]


def test_onnxruntime_and_opencv_match_keras(small_cnn, digits, model_paths):
    x = _inputs(digits)
    keras_probs = small_cnn.predict(x, verbose=0)
    for run in (ort_run, cv_run):
        probs = run(model_paths[0], x)
        assert probs.shape == keras_probs.shape
        assert np.abs(probs - keras_probs).max() < 1e-4, run.__name__
        assert (probs.argmax(1) == keras_probs.argmax(1)).mean() == 1.0, run.__name__


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_dynamic_batch(small_cnn, digits, model_paths, batch):
    x = _inputs(digits)[:batch]
    expected = small_cnn.predict(x, verbose=0)
    assert np.abs(ort_run(model_paths[0], x) - expected).max() < 1e-4
    assert np.abs(cv_run(model_paths[0], x) - expected).max() < 1e-4


def test_fp16_model_has_half_weights_float_io_and_agrees(small_cnn, digits, model_paths):
    half = onnx.load(model_paths[1])
    float_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    float_inits = [i for i in half.graph.initializer if i.data_type in float_types]
    assert float_inits and all(i.data_type == onnx.TensorProto.FLOAT16 for i in float_inits)
    assert half.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert half.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert [n.op_type for n in half.graph.node][0] == "Cast" and half.graph.node[-1].op_type == "Cast"
    assert set(n.op_type for n in half.graph.node) <= ok.SIMPLE_OPS_FP16
    x = _inputs(digits)
    keras_probs = small_cnn.predict(x, verbose=0)
    for run in (ort_run, cv_run):
        probs = run(model_paths[1], x)
        assert probs.dtype == np.float32
        assert np.abs(probs - keras_probs).max() < 5e-3, run.__name__
        assert (probs.argmax(1) == keras_probs.argmax(1)).mean() >= 0.98, run.__name__


def test_fp16_file_is_about_half_the_size(model_paths):
    import os

    assert os.path.getsize(model_paths[1]) < 0.6 * os.path.getsize(model_paths[0])


@pytest.mark.parametrize("opset", [14, 17])
def test_opset_above_13_is_rejected(small_cnn, opset):
    with pytest.raises(ok.ExportError, match="TensorRT 8.2"):
        ok.onnx_from_keras(small_cnn, opset=opset)


def test_transpose_fold_is_exact_permutation(small_cnn):
    """Folding the NHWC Transpose permutes the Dense rows: same numbers, NCHW order."""
    raw = ok.raw_onnx_from_keras(small_cnn)
    assert "Transpose" in [n.op_type for n in raw.graph.node]
    ok.constant_reshapes(raw)
    ok.remove_dead_nodes(raw)
    before = {i.name: onnx.numpy_helper.to_array(i) for i in raw.graph.initializer}
    assert ok.fold_transpose_into_dense(raw) == 1
    after = {i.name: onnx.numpy_helper.to_array(i) for i in raw.graph.initializer}
    (new_name,) = [n for n in after if n.endswith("_nchw")]
    old = before[new_name[: -len("_nchw")]]
    h, w, c = 5, 5, 8
    nchw_rows = old.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
    np.testing.assert_array_equal(after[new_name], nchw_rows)


def test_unsimple_op_is_named():
    from tests.fixtures.tiny import linear_onnx_bytes

    proto = onnx.load_from_string(linear_onnx_bytes(extra_op="Hardmax"))
    with pytest.raises(ok.ExportError, match="Hardmax"):
        ok.check_simple_ops(proto)


def test_gemm_weights_are_transposed_for_opencv_411(exported):
    proto, _ = exported
    gemms = [n for n in proto.graph.node if n.op_type == "Gemm"]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    for gemm in gemms:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute}
        assert attrs.get("transB") == 1
        assert inits[gemm.input[1]].shape[0] == inits[gemm.input[2]].shape[0]  # W is [out, in]


def test_stride_2_same_conv_gets_symmetric_pads_and_keeps_parity(digits):
    import keras

    keras.utils.set_random_seed(3)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", bias_initializer="random_normal"),
        layers.Conv2D(6, 5, strides=2, padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dense(10, activation="softmax"),
    ])
    proto = ok.onnx_from_keras(model, name="strided")
    for conv in [n for n in proto.graph.node if n.op_type == "Conv"]:
        pads = [a for a in conv.attribute if a.name == "pads"][0].ints
        assert list(pads[:2]) == list(pads[2:])
    x = _inputs(digits)
    expected = model.predict(x, verbose=0)
    path = str(__import__("tempfile").mkdtemp()) + "/strided.onnx"
    onnx.save(proto, path)
    for run in (ort_run, cv_run):
        probs = run(path, x)
        assert np.abs(probs - expected).max() < 1e-5, run.__name__
        assert (probs.argmax(1) == expected.argmax(1)).all(), run.__name__


def test_export_is_deterministic(small_cnn, exported):
    """Same model -> same bytes, so device engine caches keyed on the ONNX sha256 stay valid."""
    proto, manifest = exported
    again = ok.onnx_from_keras(small_cnn, manifest=manifest)
    assert again.SerializeToString() == proto.SerializeToString()
