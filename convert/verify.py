"""Parity of a bundle on the MNIST test digits: Keras vs ONNX Runtime (FP32, FP16) vs OpenCV DNN.

For every runtime: accuracy, top-1 agreement with Keras and the largest absolute probability
difference, stored in manifest["metrics"] (``*_test_accuracy`` and a ``parity`` dict). The bundle
is marked ``verified`` only when ONNX Runtime FP32 and OpenCV DNN FP32 agree with Keras on 100 %
of the digits and FP16 loses at most `MAX_FP16_DROP` accuracy. The ONNX Runtime FP32
probabilities go into ``reference.npz`` with the digits and labels, for the device-side check.
"""

import io
import logging
import time

import numpy as np

from edge_runtime import manifest as mf
from edge_runtime.errors import UserError

log = logging.getLogger(__name__)

REFERENCE_FILE = "reference.npz"
MAX_FP16_DROP = 0.001  # 0.1 accuracy points
REQUIRED_AGREEMENT = 1.0
BATCH = 1000

# runtime key -> (metrics key for accuracy, what it runs)
RUNTIMES = [
    ("onnxruntime_fp32", "onnx_test_accuracy", "ONNX Runtime, model.onnx"),
    ("onnxruntime_fp16", "fp16_test_accuracy", "ONNX Runtime, model.fp16.onnx"),
    ("opencv_fp32", "opencv_test_accuracy", "OpenCV DNN, model.onnx"),
    ("opencv_fp16", "opencv_fp16_test_accuracy", "OpenCV DNN, model.fp16.onnx (informational)"),
]


class VerifyResult(object):
    def __init__(self, manifest, reasons, seconds):
        self.manifest = manifest
        self.reasons = reasons
        self.seconds = seconds

    @property
    def verified(self):
        return not self.reasons


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def load_test_digits(limit=None, data=None):
    """uint8 [N,28,28] test digits and int64 labels, from the offline MNIST via train.data."""
    from train.data import load_mnist

    splits = load_mnist(data=data)
    images, labels = splits.x_test, splits.y_test
    if limit:
        images, labels = images[: int(limit)], labels[: int(limit)]
    return np.ascontiguousarray(images, np.uint8), np.asarray(labels, np.int64)


def model_input(manifest, images_u8):
    """uint8 digits -> the float32 batch the manifest describes (scale from the manifest only)."""
    if manifest["input"]["layout"] != "NHWC":
        raise UserError("verify handles NHWC bundles only; this manifest says %s" % manifest["input"]["layout"])
    scale = np.float32(manifest["preprocess"]["scale"])
    return (images_u8.astype(np.float32) * scale)[..., None]


# --------------------------------------------------------------------------
# Runtimes: one function each, same signature
# --------------------------------------------------------------------------


def _batched(run, batch_input, batch=BATCH):
    return np.concatenate([run(batch_input[i : i + batch]) for i in range(0, len(batch_input), batch)], axis=0)


def probabilities_from_keras(model, x):
    return np.asarray(model.predict(x, batch_size=BATCH, verbose=0), np.float32)


def probabilities_from_onnxruntime(path, x, input_name="image"):
    """ONNX Runtime's probabilities for ``x`` from the model at ``path`` (or the model's bytes)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return _batched(lambda b: session.run(None, {input_name: b})[0], x).astype(np.float32)


def probabilities_from_opencv(path, x):
    import cv2

    net = cv2.dnn.readNetFromONNX(path)

    def run(batch):
        net.setInput(np.ascontiguousarray(batch))
        return net.forward().reshape(len(batch), -1)

    return _batched(run, x).astype(np.float32)


def parity(probs, reference, labels):
    """accuracy, top-1 agreement with the reference and max |p - p_ref| (plain floats)."""
    probs = np.asarray(probs, np.float32).reshape(reference.shape)
    top1 = probs.argmax(axis=1)
    return {
        "accuracy": float((top1 == labels).mean()),
        "top1_agreement": float((top1 == reference.argmax(axis=1)).mean()),
        "disagreements": int((top1 != reference.argmax(axis=1)).sum()),
        "max_abs_diff": float(np.abs(probs - reference).max()),
        "mean_abs_diff": float(np.abs(probs - reference).mean()),
    }


def accuracy(probs, labels):
    return float((np.asarray(probs).argmax(axis=1) == labels).mean())


# --------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------


def verdict(metrics):
    """Reasons the bundle is not verified (empty list: verified)."""
    reasons = []
    par = metrics.get("parity", {})
    for key in ("onnxruntime_fp32", "opencv_fp32"):
        entry = par.get(key)
        if entry is None or "error" in entry:
            reasons.append("%s could not run the model: %s" % (key, (entry or {}).get("error", "not measured")))
        elif entry["top1_agreement"] < REQUIRED_AGREEMENT:
            reasons.append(
                "%s top-1 agrees with Keras on %.4f%% of the digits (%d differ); required 100%%"
                % (key, 100 * entry["top1_agreement"], entry["disagreements"])
            )
    fp16 = par.get("onnxruntime_fp16")
    if fp16 is None or "error" in fp16:
        reasons.append("onnxruntime_fp16 could not run model.fp16.onnx: %s" % (fp16 or {}).get("error", "not measured"))
    else:
        drop = metrics["keras_test_accuracy"] - fp16["accuracy"]
        if drop > MAX_FP16_DROP + 1e-12:
            reasons.append(
                "FP16 accuracy %.4f is %.2f points below Keras %.4f; allowed %.2f"
                % (fp16["accuracy"], 100 * drop, metrics["keras_test_accuracy"], 100 * MAX_FP16_DROP)
            )
    return reasons


def _run_runtime(key, manifest, x):
    fp16 = key.endswith("fp16")
    path = mf.onnx_path(manifest, fp16=fp16)
    if key.startswith("onnxruntime"):
        return probabilities_from_onnxruntime(path, x, manifest["input"]["name"])
    return probabilities_from_opencv(path, x)


def _check_hashes(manifest):
    try:
        mf.verify_files(manifest, names=[manifest["onnx"]["file"], manifest.get("onnx_fp16", {}).get("file")])
    except mf.ManifestError as exc:
        return [str(exc)]
    return []


def reference_npz_bytes(images_u8, labels, onnx_probabilities):
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        images=np.ascontiguousarray(images_u8, np.uint8),
        labels=np.asarray(labels, np.int64),
        onnx_probabilities=np.asarray(onnx_probabilities, np.float32),
    )
    return buffer.getvalue()


def write_reference(manifest, images_u8, labels, onnx_probabilities):
    """reference.npz for `make verify-jetson`, recorded (and hashed) in the manifest."""
    mf.atomic_write_bytes(mf.file_path(manifest, REFERENCE_FILE),
                          reference_npz_bytes(images_u8, labels, onnx_probabilities))
    manifest["reference"] = {"file": REFERENCE_FILE, "count": int(len(labels)),
                             "arrays": {"images": "uint8 [N,28,28]", "labels": "int64 [N]",
                                        "onnx_probabilities": "float32 [N,10] (ONNX Runtime FP32)"}}
    mf.record_file(manifest, REFERENCE_FILE)


def verify_bundle(manifest, keras_model, images_u8, labels):
    """Run all runtimes, fill manifest metrics/verified, write reference.npz. Manifest not saved here."""
    started = time.time()
    name = manifest["name"]
    labels = np.asarray(labels, np.int64)
    x = model_input(manifest, images_u8)
    reasons = _check_hashes(manifest)
    log.info("%s: Keras on %d test digits", name, len(x))
    t = time.time()
    keras_probs = probabilities_from_keras(keras_model, x)
    metrics = {
        "test_count": int(len(labels)),
        "keras_test_accuracy": accuracy(keras_probs, labels),
        "parity": {},
        "seconds": {"keras": round(time.time() - t, 3)},
    }
    onnx_probs = None
    for key, acc_key, what in RUNTIMES:
        if key.endswith("fp16") and not manifest.get("onnx_fp16"):
            metrics["parity"][key] = {"error": "no model.fp16.onnx in the bundle"}
            continue
        log.info("%s: %s", name, what)
        t = time.time()
        try:
            probs = _run_runtime(key, manifest, x)
        except Exception as exc:  # any runtime failure is a verification result, not a crash
            metrics["parity"][key] = {"error": "%s: %s" % (type(exc).__name__, str(exc).strip()[:400])}
            log.warning("%s: %s failed: %s", name, what, metrics["parity"][key]["error"])
            continue
        metrics["seconds"][key] = round(time.time() - t, 3)
        metrics["parity"][key] = parity(probs, keras_probs, labels)
        metrics[acc_key] = metrics["parity"][key]["accuracy"]
        if key == "onnxruntime_fp32":
            onnx_probs = probs
    reasons.extend(verdict(metrics))
    if onnx_probs is not None:
        write_reference(manifest, images_u8, labels, onnx_probs)
    metrics["criteria"] = {"top1_agreement_fp32": REQUIRED_AGREEMENT, "max_fp16_accuracy_drop": MAX_FP16_DROP}
    metrics["failures"] = reasons
    manifest["metrics"] = metrics
    manifest["verified"] = not reasons
    seconds = time.time() - started
    manifest["metrics"]["seconds"]["total"] = round(seconds, 3)
    return VerifyResult(manifest, reasons, seconds)
