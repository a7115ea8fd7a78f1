"""Backend registry: one table drives `--backend` validation, `auto` order and `info`.

Each entry names the module that implements it and the Python module it needs,
so availability can be checked without importing the heavy dependency.
"""

import importlib

from .base import Backend, BackendError  # noqa: F401

# name -> (module in this package, class name, python module it needs, install hint)
BACKENDS = [
    ("tensorrt", "tensorrt", "TensorRTBackend", ("tensorrt", "pycuda"),
     "TensorRT ships with JetPack (sudo apt-get install python3-libnvinfer); "
     "pycuda: run scripts/setup_jetson.sh"),
    ("onnxruntime", "onnxruntime", "OnnxRuntimeBackend", ("onnxruntime",),
     "pip install onnxruntime (on a Jetson: NVIDIA's onnxruntime-gpu wheel for your JetPack)"),
    ("opencv", "opencv_dnn", "OpenCVDnnBackend", ("cv2",),
     "pip install opencv-python-headless (on a Jetson, JetPack's python3-opencv)"),
]
BACKEND_NAMES = [row[0] for row in BACKENDS]
CHOICES = ["auto"] + BACKEND_NAMES


def _spec(name):
    for row in BACKENDS:
        if row[0] == name:
            return row
    raise BackendError("unknown backend %r; choose one of: %s" % (name, ", ".join(CHOICES)))


def missing_modules(name):
    """Python modules the backend needs that cannot be imported here (empty list = importable)."""
    missing = []
    for mod in _spec(name)[3]:
        try:
            importlib.import_module(mod)
        except Exception:  # ImportError, or a broken install raising something else
            missing.append(mod)
    return missing


def available_backends():
    return [name for name in BACKEND_NAMES if not missing_modules(name)]


def backend_class(name):
    _, module, cls, _, _ = _spec(name)
    return getattr(importlib.import_module("." + module, __name__), cls)


def auto_order():
    """Preference for `auto`: TensorRT (needs a usable GPU), then ONNX Runtime, then OpenCV DNN."""
    order = []
    for name in BACKEND_NAMES:
        if missing_modules(name):
            continue
        if name == "tensorrt":
            try:
                if not backend_class(name).gpu_available():
                    continue
            except Exception:
                continue
        order.append(name)
    return order


def create_backend(manifest, prefer="auto", **options):
    """Instantiate (not activate) the backend; `prefer` is a name or "auto"."""
    if prefer == "auto":
        order = auto_order()
        if not order:
            raise BackendError(
                "no inference backend is available; install one of: "
                + "; ".join("%s (%s)" % (row[0], row[4]) for row in BACKENDS)
            )
        prefer = order[0]
    name, _, _, _, hint = _spec(prefer)
    missing = missing_modules(name)
    if missing:
        others = [b for b in available_backends() if b != name]
        alternatives = ("Available here: --backend " + " | ".join(others)) if others else (
            "No other backend is available either.")
        raise BackendError(
            "backend %r is not available: cannot import %s. Install: %s. %s"
            % (name, ", ".join(missing), hint, alternatives)
        )
    return backend_class(name)(manifest, **options)


def open_backend(manifest, prefer="auto", **options):
    """Create a backend for use as a context manager: `with open_backend(m) as net: ...`."""
    return create_backend(manifest, prefer=prefer, **options)
