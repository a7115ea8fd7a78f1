"""The artifact bundle's manifest: the only contract between workstation and Jetson.

Stdlib only and Python 3.6 compatible: this module runs on a Jetson Nano
(JetPack 4.6, Python 3.6.9) as well as on the workstation. Both sides read
and validate the same schema, so no preprocessing constant is written twice.

A bundle is a folder ``artifacts/<model>/`` holding ``manifest.json`` plus the
files it names (``model.onnx``, optionally ``model.fp16.onnx``, ``model.int8.onnx`` ...), each with
its sha256 recorded under ``files``.
"""

import hashlib
import json
import os
import tempfile

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
MAX_SUPPORTED_OPSET = 13  # TensorRT 8.2's ONNX parser (onnx-tensorrt 8.2-GA)

DEFAULT_PREPROCESS = {
    "size": 28,  # model input is size x size
    "box": 20,  # LeCun: digit fitted into box x box keeping aspect ratio
    "centre": "mass",  # then centred in the 28x28 frame by centre of mass
    "scale": 1.0 / 255.0,  # uint8 -> [0, 1]
    "foreground": "white-on-black",
}
DEFAULT_LABELS = [str(i) for i in range(10)]

_REQUIRED_KEYS = ("schema", "name", "input", "output", "preprocess", "labels", "onnx")


class ManifestError(ValueError):
    """A manifest or bundle is missing, malformed, or does not match its files."""


# --------------------------------------------------------------------------
# Atomic file writes (temp file in the same folder + rename)
# --------------------------------------------------------------------------


def _umask_mode(default=0o666):
    mask = os.umask(0)
    os.umask(mask)
    return default & ~mask


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` so readers see the old file or the new one, never half.

    The file gets the mode a plain ``open(path, "w")`` would give (mkstemp's 0600 is undone),
    so bundles copied to a device stay readable by its other users.
    """
    path = str(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        os.makedirs(folder)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _umask_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(str(path), "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------
# Building and validating
# --------------------------------------------------------------------------


def new_manifest(name, onnx_file="model.onnx", opset=13, ir_version=7, labels=None, preprocess=None):
    """A manifest dict with the project's defaults for a 1x28x28 digit classifier."""
    pre = dict(DEFAULT_PREPROCESS)
    if preprocess:
        pre.update(preprocess)
    return {
        "schema": SCHEMA_VERSION,
        "name": name,
        "input": {"name": "image", "shape": [-1, 28, 28, 1], "layout": "NHWC", "dtype": "float32"},
        "output": {"name": "probabilities", "shape": [-1, 10], "kind": "softmax"},
        "preprocess": pre,
        "labels": list(labels or DEFAULT_LABELS),
        "onnx": {"file": onnx_file, "sha256": None, "opset": int(opset), "ir_version": int(ir_version)},
        "files": {},
        "metrics": {},
        "verified": False,
        "created_by": {},
    }


def validate(manifest, where="manifest"):
    """Check the schema; raise ManifestError saying what is wrong and how to fix it."""
    if not isinstance(manifest, dict):
        raise ManifestError("%s: expected a JSON object, got %s" % (where, type(manifest).__name__))
    missing = [k for k in _REQUIRED_KEYS if k not in manifest]
    if missing:
        raise ManifestError(
            "%s: missing keys %s; re-export the bundle with `make export`" % (where, ", ".join(missing))
        )
    schema = manifest["schema"]
    if schema != SCHEMA_VERSION:
        raise ManifestError(
            "%s: schema %r is not supported (this runtime reads schema %d); "
            "re-export the bundle with this version of the toolkit (`make export`) "
            "or update edge_runtime/ on the device" % (where, schema, SCHEMA_VERSION)
        )
    inp = manifest["input"]
    for key in ("name", "shape", "layout", "dtype"):
        if key not in inp:
            raise ManifestError("%s: input.%s is missing" % (where, key))
    shape = inp["shape"]
    if not (isinstance(shape, list) and len(shape) == 4):
        raise ManifestError("%s: input.shape must be a 4-item list like [-1, 28, 28, 1], got %r" % (where, shape))
    if inp["layout"] not in ("NHWC", "NCHW"):
        raise ManifestError("%s: input.layout must be NHWC or NCHW, got %r" % (where, inp["layout"]))
    if inp["dtype"] != "float32":
        raise ManifestError("%s: input.dtype must be float32, got %r" % (where, inp["dtype"]))
    out = manifest["output"]
    if "name" not in out or "shape" not in out:
        raise ManifestError("%s: output needs name and shape" % where)
    n_classes = out["shape"][-1]
    labels = manifest["labels"]
    if not isinstance(labels, list) or len(labels) != n_classes:
        count = len(labels) if isinstance(labels, list) else -1
        raise ManifestError("%s: %d labels but the output has %d classes" % (where, count, n_classes))
    pre = manifest["preprocess"]
    for key in ("size", "box", "scale", "foreground"):
        if key not in pre:
            raise ManifestError("%s: preprocess.%s is missing" % (where, key))
    size = input_hw(manifest)
    if pre["size"] != size[0] or size[0] != size[1]:
        raise ManifestError(
            "%s: preprocess.size %r does not match the input shape %r" % (where, pre["size"], shape)
        )
    if not 0 < pre["box"] <= pre["size"]:
        raise ManifestError("%s: preprocess.box must be in 1..%d, got %r" % (where, pre["size"], pre["box"]))
    if pre["foreground"] not in ("white-on-black", "black-on-white"):
        raise ManifestError("%s: preprocess.foreground must be white-on-black or black-on-white" % where)
    onnx = manifest["onnx"]
    if "file" not in onnx:
        raise ManifestError("%s: onnx.file is missing" % where)
    opset = onnx.get("opset")
    if opset is not None and int(opset) > MAX_SUPPORTED_OPSET:
        raise ManifestError(
            "%s: ONNX opset %s is newer than TensorRT 8.2 on the Jetson Nano parses (<= %d); "
            "re-export with `python -m convert export --opset 13`" % (where, opset, MAX_SUPPORTED_OPSET)
        )
    return manifest


def input_hw(manifest):
    """(height, width) of the model input, whatever the layout."""
    shape = manifest["input"]["shape"]
    if manifest["input"]["layout"] == "NHWC":
        return int(shape[1]), int(shape[2])
    return int(shape[2]), int(shape[3])


# --------------------------------------------------------------------------
# Bundle I/O
# --------------------------------------------------------------------------


def manifest_path(model):
    """Accept a bundle folder or its manifest.json; return the manifest path."""
    model = str(model)
    if os.path.isdir(model):
        return os.path.join(model, MANIFEST_NAME)
    return model


def bundle_dir(manifest_or_path):
    if isinstance(manifest_or_path, dict):
        return manifest_or_path.get("_dir", ".")
    return os.path.dirname(os.path.abspath(manifest_path(manifest_or_path)))


def load(model, check_files=True):
    """Read, validate and (by default) hash-check a bundle. ``model`` is a folder or manifest.json.

    The returned dict carries ``_dir`` (the bundle folder, not written back).
    """
    path = manifest_path(model)
    if not os.path.exists(path):
        raise ManifestError(
            "no manifest at %s: manifest.json is missing; expected a bundle folder such as artifacts/cnn "
            "(create it with `make train` or `make export`, or copy it with `make deploy`)" % os.path.dirname(path)
        )
    try:
        with open(path, "r") as handle:
            manifest = json.load(handle)
    except ValueError as exc:
        raise ManifestError("%s is not valid JSON (%s); re-export the bundle with `make export`" % (path, exc))
    validate(manifest, where=path)
    manifest["_dir"] = os.path.dirname(os.path.abspath(path))
    if check_files:
        verify_files(manifest)
    return manifest


def file_path(manifest, name):
    return os.path.join(bundle_dir(manifest), name)


def onnx_path(manifest, fp16=False, int8=False):
    """The bundle's model.onnx, its FP16 twin (``fp16``) or its INT8 one for ONNX Runtime (``int8``)."""
    if int8:
        name = manifest.get("onnx_int8", {}).get("file")
        if not name:
            raise ManifestError("bundle %s has no INT8 ONNX; add it with `python -m convert int8 %s` "
                                "(or `make export`)" % (bundle_dir(manifest), bundle_dir(manifest)))
        return file_path(manifest, name)
    if fp16:
        name = manifest.get("onnx_fp16", {}).get("file")
        if not name:
            raise ManifestError("bundle %s has no FP16 ONNX; re-export with `make export`" % bundle_dir(manifest))
        return file_path(manifest, name)
    return file_path(manifest, manifest["onnx"]["file"])


def recorded_files(manifest):
    """{name relative to the bundle: sha256} for every file the manifest vouches for."""
    files = dict(manifest.get("files") or {})
    if manifest["onnx"].get("sha256"):
        files.setdefault(manifest["onnx"]["file"], manifest["onnx"]["sha256"])
    return files


def verify_files(manifest, names=None):
    """Compare every recorded sha256 with the file on disk. Raise ManifestError on a mismatch."""
    files = recorded_files(manifest)
    if names is not None:
        files = {k: v for k, v in files.items() if k in names}
    for name, expected in sorted(files.items()):
        path = file_path(manifest, name)
        if not os.path.exists(path):
            raise ManifestError(
                "bundle file %s is missing (listed in the manifest); copy the whole bundle folder again" % path
            )
        actual = sha256_file(path)
        if actual != expected:
            raise ManifestError(
                "sha256 mismatch for %s: manifest says %s..., file is %s...; the file was changed or "
                "copied incompletely. Copy the bundle again (`make deploy`) or re-export it (`make export`)"
                % (path, expected[:12], actual[:12])
            )
    return True


def record_file(manifest, name):
    """Hash ``name`` (relative to the bundle) into ``manifest['files']``."""
    digest = sha256_file(file_path(manifest, name))
    manifest.setdefault("files", {})[name] = digest
    if name == manifest["onnx"]["file"]:
        manifest["onnx"]["sha256"] = digest
    return digest


def save(manifest, folder=None):
    """Validate and write manifest.json atomically; private keys (``_dir``) are not written."""
    folder = folder or bundle_dir(manifest)
    clean = {k: v for k, v in manifest.items() if not k.startswith("_")}
    validate(clean, where=os.path.join(folder, MANIFEST_NAME))
    atomic_write_json(os.path.join(folder, MANIFEST_NAME), clean)
    manifest["_dir"] = os.path.abspath(folder)
    return os.path.join(folder, MANIFEST_NAME)
