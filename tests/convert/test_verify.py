"""verify: metrics, reference.npz, and the pass/fail rule (a tampered FP16 or broken ONNX fails)."""

import os

import numpy as np
import pytest

from tests.convert.conftest import needs_workstation_stack

needs_workstation_stack()

import onnx  # noqa: E402

from convert import verify  # noqa: E402
from convert.export import export_bundle  # noqa: E402
from edge_runtime import manifest as mf  # noqa: E402


@pytest.fixture
def exported(trained_folder, small_cnn):
    export_bundle(trained_folder, keras_model=small_cnn)
    return trained_folder


def _verify(folder, small_cnn, digits):
    manifest = mf.load(folder, check_files=False)
    result = verify.verify_bundle(manifest, small_cnn, *digits)
    mf.save(manifest, folder)
    return result


def _rehash(folder, name):
    manifest = mf.load(folder, check_files=False)
    digest = mf.record_file(manifest, name)
    if manifest.get("onnx_fp16", {}).get("file") == name:
        manifest["onnx_fp16"]["sha256"] = digest
    mf.save(manifest, folder)


def test_good_bundle_is_verified_with_metrics_and_reference(exported, small_cnn, digits):
    images, labels = digits
    result = _verify(exported, small_cnn, digits)
    assert result.verified, result.reasons
    manifest = mf.load(exported)  # hashes of model.onnx, model.fp16.onnx, reference.npz all check out
    assert manifest["verified"] is True
    metrics = manifest["metrics"]
    assert metrics["test_count"] == len(labels)
    assert metrics["keras_test_accuracy"] == 1.0  # labels are Keras' own predictions
    for key in ("onnx_test_accuracy", "fp16_test_accuracy", "opencv_test_accuracy"):
        assert metrics[key] >= 0.98, key
    for key in ("onnxruntime_fp32", "opencv_fp32"):
        assert metrics["parity"][key]["top1_agreement"] == 1.0
        assert metrics["parity"][key]["max_abs_diff"] < 1e-4
    assert metrics["parity"]["onnxruntime_fp16"]["max_abs_diff"] < 5e-3
    assert manifest["reference"]["file"] == "reference.npz" and manifest["reference"]["count"] == len(labels)
    assert set(manifest["files"]) == {"model.onnx", "model.fp16.onnx", "reference.npz"}
    assert manifest["onnx_fp16"]["sha256"] == mf.sha256_file(os.path.join(exported, "model.fp16.onnx"))
    with np.load(os.path.join(exported, "reference.npz")) as ref:
        assert ref["images"].dtype == np.uint8 and ref["images"].shape == (len(labels), 28, 28)
        assert ref["labels"].dtype == np.int64 and (ref["labels"] == labels).all()
        assert ref["onnx_probabilities"].dtype == np.float32 and ref["onnx_probabilities"].shape == (len(labels), 10)
        np.testing.assert_array_equal(ref["images"], images)
        x = images.astype(np.float32)[..., None] * np.float32(manifest["preprocess"]["scale"])
        expected = verify.probabilities_from_onnxruntime(os.path.join(exported, "model.onnx"), x)
        np.testing.assert_allclose(ref["onnx_probabilities"], expected, atol=1e-6)


def _tamper_fp16(folder):
    """Reverse the rows of the last Gemm's weights in the FP16 model: valid graph, wrong answers."""
    path = os.path.join(folder, "model.fp16.onnx")
    model = onnx.load(path)
    last_gemm = [n for n in model.graph.node if n.op_type == "Gemm"][-1]
    for init in model.graph.initializer:
        if init.name == last_gemm.input[1]:
            weights = onnx.numpy_helper.to_array(init)
            init.CopyFrom(onnx.numpy_helper.from_array(weights[:, ::-1].copy(), init.name))
    mf.atomic_write_bytes(path, model.SerializeToString())
    _rehash(folder, "model.fp16.onnx")


def test_tampered_fp16_fails_verification(exported, small_cnn, digits):
    _tamper_fp16(exported)
    result = _verify(exported, small_cnn, digits)
    assert not result.verified
    assert any("FP16 accuracy" in reason for reason in result.reasons)
    manifest = mf.load(exported)
    assert manifest["verified"] is False
    assert manifest["metrics"]["fp16_test_accuracy"] < 0.9
    assert manifest["metrics"]["failures"] == result.reasons


def test_broken_onnx_fails_verification(exported, small_cnn, digits):
    mf.atomic_write_bytes(os.path.join(exported, "model.onnx"), b"this is not an onnx model")
    _rehash(exported, "model.onnx")
    result = _verify(exported, small_cnn, digits)
    assert not result.verified
    manifest = mf.load(exported, check_files=False)
    assert manifest["verified"] is False
    assert "error" in manifest["metrics"]["parity"]["onnxruntime_fp32"]
    assert "error" in manifest["metrics"]["parity"]["opencv_fp32"]
    assert "reference" not in manifest  # no FP32 outputs to record


def test_changed_file_without_new_hash_fails_verification(exported, small_cnn, digits):
    with open(os.path.join(exported, "model.fp16.onnx"), "ab") as handle:
        handle.write(b"\0")
    result = _verify(exported, small_cnn, digits)
    assert not result.verified
    assert any("sha256 mismatch" in reason for reason in result.reasons)


def test_verdict_rules():
    good = {"keras_test_accuracy": 0.99, "parity": {
        "onnxruntime_fp32": {"top1_agreement": 1.0, "disagreements": 0, "accuracy": 0.99},
        "opencv_fp32": {"top1_agreement": 1.0, "disagreements": 0, "accuracy": 0.99},
        "onnxruntime_fp16": {"top1_agreement": 0.999, "disagreements": 1, "accuracy": 0.989}}}
    assert verify.verdict(good) == []  # a drop of exactly 0.1 points passes
    worse = dict(good, parity=dict(good["parity"], onnxruntime_fp16={"accuracy": 0.9889, "top1_agreement": 0.99}))
    assert len(verify.verdict(worse)) == 1
    one_off = dict(good, parity=dict(good["parity"], opencv_fp32={"top1_agreement": 0.9999, "disagreements": 1}))
    (reason,) = verify.verdict(one_off)
    assert "opencv_fp32" in reason and "1 differ" in reason
