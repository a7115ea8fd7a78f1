"""Bundle folder with model.keras -> model.onnx + model.fp16.onnx + manifest.json, atomically.

The slow work happens in a private staging folder inside the bundle (``.export-staging-XXXX/``); the new files
are moved into place with os.replace only at the end, manifest.json last, so an interrupted or
failed export leaves the previous bundle as it was (valid, with its old hashes).
"""

import json
import logging
import os
import shutil
import tempfile
import time
from typing import NamedTuple

from edge_runtime import manifest as mf
from edge_runtime.errors import UserError

from .onnx_from_keras import DEFAULT_OPSET, IR_VERSION, ExportError, fp16_from_fp32, onnx_from_keras, producer_versions
from .trt82_ops import check_trt82

log = logging.getLogger(__name__)

KERAS_FILE = "model.keras"
METRICS_FILE = "metrics.json"
ONNX_FILE = "model.onnx"
ONNX_FP16_FILE = "model.fp16.onnx"
STAGING_PREFIX = ".export-staging-"  # one private folder per export, so two exports never share one


class Staged(NamedTuple):
    """An export waiting in ``staging`` to be moved into ``folder``."""

    folder: str
    staging: str
    manifest: dict
    files: list  # names written in staging


def keras_path(folder):
    """model.keras of a bundle, or a UserError saying how to make it."""
    path = os.path.join(str(folder), KERAS_FILE)
    if not os.path.exists(path):
        raise UserError(
            "%s not found; expected a trained bundle folder such as artifacts/cnn containing %s. "
            "Train it first: `make train` (or `python -m train --model %s --out %s`)"
            % (path, KERAS_FILE, os.path.basename(os.path.abspath(str(folder))),
               os.path.dirname(os.path.abspath(str(folder))) or ".")
        )
    return path


def load_keras(folder):
    import keras

    path = keras_path(folder)
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # a corrupt or foreign file: say which and how to recover
        raise UserError(
            "cannot load %s (%s: %s); retrain it with `make train`" % (path, type(exc).__name__, exc)
        ) from exc


def read_training_metrics(folder):
    """metrics.json written by training ({} when absent or unreadable)."""
    path = os.path.join(str(folder), METRICS_FILE)
    if not os.path.exists(path):
        return {}
    try:
        with open(path) as handle:
            data = json.load(handle)
    except ValueError:
        log.warning("%s is not valid JSON; ignoring it", path)
        return {}
    return data if isinstance(data, dict) else {}


def model_name(folder, training_metrics=None):
    metrics = training_metrics or {}
    name = metrics.get("name") or metrics.get("model")
    return str(name) if isinstance(name, str) and name else os.path.basename(os.path.abspath(str(folder)))


def new_bundle_manifest(folder, opset=DEFAULT_OPSET):
    """The manifest of a fresh export: schema defaults, name, producer versions; not verified yet."""
    training = read_training_metrics(folder)
    manifest = mf.new_manifest(model_name(folder, training), onnx_file=ONNX_FILE, opset=opset, ir_version=IR_VERSION)
    manifest["created_by"] = producer_versions()
    if "test_accuracy" in training:
        manifest["training"] = {"test_accuracy": training["test_accuracy"]}
    return manifest


def _write_model(path, proto):
    mf.atomic_write_bytes(path, proto.SerializeToString())


def stage_export(folder, opset=DEFAULT_OPSET, fp16=True, keras_model=None):
    """Export into ``folder/.export-staging``; nothing in ``folder`` itself changes yet."""
    folder = str(folder)
    started = time.time()
    model = keras_model if keras_model is not None else load_keras(folder)
    manifest = new_bundle_manifest(folder, opset)
    log.info("%s: exporting ONNX (opset %d, IR %d) with tf2onnx", manifest["name"], opset, IR_VERSION)
    try:
        proto = onnx_from_keras(model, opset=opset, manifest=manifest)
    except ExportError as exc:
        raise UserError("%s: %s" % (folder, exc)) from exc
    try:
        half = fp16_from_fp32(proto) if fp16 else None
    except ExportError as exc:
        raise UserError("%s: FP16 conversion failed: %s; export without it with --no-fp16" % (folder, exc)) from exc
    problems = check_trt82(proto) + (["model.fp16.onnx: " + p for p in check_trt82(half)] if half else [])
    if problems:
        raise UserError(
            "%s: the exported graph would not parse on TensorRT 8.2 (Jetson Nano):\n  %s"
            % (folder, "\n  ".join(problems))
        )
    staging = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder)
    manifest["_dir"] = staging
    _write_model(os.path.join(staging, ONNX_FILE), proto)
    mf.record_file(manifest, ONNX_FILE)
    files = [ONNX_FILE]
    if half is not None:
        _write_model(os.path.join(staging, ONNX_FP16_FILE), half)
        digest = mf.record_file(manifest, ONNX_FP16_FILE)
        manifest["onnx_fp16"] = {"file": ONNX_FP16_FILE, "sha256": digest, "precision": "fp16",
                                 "io_dtype": "float32"}
        files.append(ONNX_FP16_FILE)
    manifest["export"] = {
        "seconds": round(time.time() - started, 3),
        "ops": sorted(set(node.op_type for node in proto.graph.node)),
        "trt82_problems": problems,
        "keras_file": KERAS_FILE,
    }
    log.info("%s: exported in %.1f s (ops: %s)", manifest["name"], manifest["export"]["seconds"],
             ", ".join(manifest["export"]["ops"]))
    return Staged(folder, staging, manifest, files)


def commit_staged(staged, extra_files=()):
    """Move the staged files into the bundle (manifest last) and remove the staging folder."""
    manifest = staged.manifest
    names = list(staged.files) + [name for name in extra_files if name not in staged.files]
    for name in names:
        os.replace(os.path.join(staged.staging, name), os.path.join(staged.folder, name))
    manifest["_dir"] = os.path.abspath(staged.folder)
    stale = [name for name in (manifest.get("files") or {}) if not os.path.exists(mf.file_path(manifest, name))]
    for name in stale:
        del manifest["files"][name]
    path = mf.save(manifest, staged.folder)
    shutil.rmtree(staged.staging, ignore_errors=True)
    return path


def discard_staged(staged):
    shutil.rmtree(staged.staging, ignore_errors=True)


def export_bundle(folder, opset=DEFAULT_OPSET, fp16=True, keras_model=None):
    """Export and commit (no verification: the manifest says verified false). Returns the manifest."""
    staged = stage_export(folder, opset=opset, fp16=fp16, keras_model=keras_model)
    try:
        commit_staged(staged)
    except BaseException:
        discard_staged(staged)
        raise
    return staged.manifest
