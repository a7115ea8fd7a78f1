"""model.onnx -> model.int8.onnx: static INT8 quantization for ONNX Runtime on a CPU.

A digit's probabilities cost about 0.11 ms of one core in FP32 ONNX Runtime (the convolutions:
about 10 M multiply-adds); on a CPU with int8 dot-product instructions (x86 VNNI, Arm's dot
product) the INT8 model runs them 1.8-1.9x faster (measured on the 2-core AVX-512 VNNI VM,
batches of 6-32 digits, one thread). This module writes that model:

- ONNX Runtime's static quantizer (``onnxruntime.quantization.quantize_static``), QDQ format
  (QuantizeLinear / DequantizeLinear, standard opset-13 ops that ONNX Runtime fuses into int8
  kernels at load), int8 weights per output channel, uint8 activations, MinMax ranges;
- calibrated on ``CALIBRATION_DIGITS`` digits of the MNIST *training* split (never the test
  digits that the parity check scores);
- the classifier head kept in float: the last Gemm/MatMul and everything after it (the Softmax).
  Quantized there, the probabilities would come in steps of 1/256 and no digit would ever read
  above 0.996, while the runtime's number rules compare them with 0.98 and 0.999.

It is for ONNX Runtime only: TensorRT on the Nano builds FP16 from model.onnx (the Nano's
Maxwell GPU has no fast INT8), and OpenCV 4.1's DNN importer does not read QDQ graphs.

``int8_bundle(folder)`` adds it to an existing bundle (no Keras needed): it quantizes model.onnx,
scores the result against the FP32 probabilities in reference.npz, and records the file, its
hash and that parity under ``onnx_int8`` in manifest.json. The runtime uses it (``--ort-precision
auto``) only when that parity passed (``verified``).
"""

import logging
import os
import tempfile

import numpy as np

from edge_runtime import manifest as mf
from edge_runtime.errors import UserError

log = logging.getLogger(__name__)

ONNX_INT8_FILE = "model.int8.onnx"
CALIBRATION_DIGITS = 1000
CALIBRATION_SEED = 0
CALIBRATION_BATCH = 50
MAX_INT8_DROP = 0.001  # accuracy points below ONNX Runtime FP32 on the reference digits (0.1)
MIN_INT8_AGREEMENT = 0.999  # top-1 agreement with FP32 on the reference digits
HEAD_OPS = ("Gemm", "MatMul")


def float_head_nodes(model):
    """Names of the nodes kept in float: the last Gemm/MatMul (the classifier) and every node after
    it in graph order (its activation, the Softmax). [] when the graph has no Gemm/MatMul."""
    nodes = list(model.graph.node)
    last = max([i for i, node in enumerate(nodes) if node.op_type in HEAD_OPS] or [-1])
    if last < 0:
        return []
    missing = [i for i in range(last, len(nodes)) if not nodes[i].name]
    if missing:
        raise UserError("the ONNX graph's nodes %s have no names, so the quantizer cannot leave them in "
                        "float; re-export the bundle with `make export`" % missing)
    return [node.name for node in nodes[last:]]


def calibration_digits(count=CALIBRATION_DIGITS, data=None, seed=CALIBRATION_SEED):
    """uint8 [count, 28, 28] digits drawn (seeded) from the MNIST training split, offline."""
    from train.data import load_mnist

    train = load_mnist(data=data).x_train
    if len(train) < count:
        raise UserError("the MNIST training split has %d digits; calibration needs %d" % (len(train), count))
    picked = np.random.RandomState(seed).choice(len(train), size=int(count), replace=False)
    return np.ascontiguousarray(train[np.sort(picked)], np.uint8)


def int8_from_onnx(onnx_path, input_name, x):
    """(the INT8 model's bytes, the names of the nodes kept in float): the FP32 model at ``onnx_path``
    quantized, calibrated on the float batch ``x`` (the model's input). Nothing is left on disk (the
    quantizer writes to a private temp file); ``int8_bundle`` commits the bytes."""
    try:
        import onnx
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    except ImportError as exc:
        raise UserError("INT8 quantization needs onnx and onnxruntime (%s); run `make venv`" % exc) from exc

    class Batches(CalibrationDataReader):
        """The calibration digits as the model's input, CALIBRATION_BATCH at a time."""

        def __init__(self):
            self.feeds = iter([{input_name: x[i : i + CALIBRATION_BATCH]} for i in range(0, len(x), CALIBRATION_BATCH)])

        def get_next(self):
            return next(self.feeds, None)

    head = float_head_nodes(onnx.load(onnx_path))
    quiet = _Without("Please consider")  # (its advice to pre-process: this graph is already simplified)
    logging.getLogger().addFilter(quiet)
    fd, tmp = tempfile.mkstemp(prefix=".model.int8.", suffix=".tmp", dir=os.path.dirname(os.path.abspath(onnx_path)))
    os.close(fd)
    try:
        quantize_static(onnx_path, tmp, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=head)
        with open(tmp, "rb") as handle:
            return handle.read(), head
    finally:
        logging.getLogger().removeFilter(quiet)
        os.remove(tmp)


class _Without(logging.Filter):
    """Drops log records whose message starts with ``prefix``."""

    def __init__(self, prefix):
        logging.Filter.__init__(self)
        self.prefix = prefix

    def filter(self, record):
        return not str(record.getMessage()).startswith(self.prefix)


def _reference(manifest):
    """(float input batch, labels, FP32 probabilities) of the bundle's reference.npz."""
    from .verify import REFERENCE_FILE, model_input

    if REFERENCE_FILE not in (manifest.get("files") or {}):
        raise UserError("%s has no %s to score the INT8 model against; verify the bundle first "
                        "(`make export` or `python -m convert verify %s`)"
                        % (mf.bundle_dir(manifest), REFERENCE_FILE, mf.bundle_dir(manifest)))
    mf.verify_files(manifest, names=[REFERENCE_FILE])
    with np.load(mf.file_path(manifest, REFERENCE_FILE)) as ref:
        return model_input(manifest, ref["images"]), np.asarray(ref["labels"], np.int64), ref["onnx_probabilities"]


def int8_parity(fp32_probs, int8_probs, labels):
    """The INT8 model against FP32 on the same digits: ``verify.parity`` plus the accuracy drop and
    whether it passes (drop <= MAX_INT8_DROP, top-1 agreement >= MIN_INT8_AGREEMENT)."""
    from .verify import accuracy, parity

    entry = parity(int8_probs, fp32_probs, labels)
    entry["fp32_accuracy"] = accuracy(fp32_probs, labels)
    entry["accuracy_drop"] = entry["fp32_accuracy"] - entry["accuracy"]
    entry["passed"] = bool(entry["accuracy_drop"] <= MAX_INT8_DROP + 1e-12
                           and entry["top1_agreement"] >= MIN_INT8_AGREEMENT)
    return entry


def _forget_int8(manifest, folder):
    """Drop a previous INT8 model from the manifest (saved) before its file is replaced."""
    if manifest.pop("onnx_int8", None) is not None or ONNX_INT8_FILE in (manifest.get("files") or {}):
        (manifest.get("files") or {}).pop(ONNX_INT8_FILE, None)
        mf.save(manifest, folder)


def int8_bundle(folder, data=None, digits=CALIBRATION_DIGITS):
    """Add model.int8.onnx to the verified bundle in ``folder`` and record it in its manifest
    (``onnx_int8``: file, sha256, calibration, float nodes, parity, verified). Returns the manifest."""
    from .verify import model_input, probabilities_from_onnxruntime

    manifest = mf.load(folder)
    name = manifest["name"]
    x, labels, fp32 = _reference(manifest)
    input_name = manifest["input"]["name"]
    log.info("%s: calibrating INT8 on %d MNIST training digits", name, digits)
    calibration = model_input(manifest, calibration_digits(digits, data=data))
    model, head = int8_from_onnx(mf.onnx_path(manifest), input_name, calibration)
    log.info("%s: scoring %s on the %d reference digits", name, ONNX_INT8_FILE, len(labels))
    entry = int8_parity(fp32, probabilities_from_onnxruntime(model, x, input_name), labels)
    _forget_int8(manifest, folder)  # (an interrupt below leaves a bundle without INT8, never a wrong hash)
    mf.atomic_write_bytes(mf.file_path(manifest, ONNX_INT8_FILE), model)
    digest = mf.record_file(manifest, ONNX_INT8_FILE)
    manifest["onnx_int8"] = {
        "file": ONNX_INT8_FILE, "sha256": digest, "precision": "int8", "io_dtype": "float32", "format": "QDQ",
        "for": "onnxruntime", "calibration": {"digits": int(digits), "split": "train", "seed": CALIBRATION_SEED,
                                              "method": "MinMax"},
        "float_nodes": head, "verified": entry["passed"], "parity": entry,
        "criteria": {"max_accuracy_drop": MAX_INT8_DROP, "min_top1_agreement": MIN_INT8_AGREEMENT},
    }
    manifest.setdefault("metrics", {}).setdefault("parity", {})["onnxruntime_int8"] = entry
    manifest["metrics"]["onnxruntime_int8_accuracy"] = entry["accuracy"]
    mf.save(manifest, folder)  # (the result is the caller's to report: `convert int8` / `all` print it)
    return manifest
