"""The only module that touches version-specific TensorRT API (8.0 ... 11.x).

The version is parsed once into a tuple of ints (never compared as a string:
``"10.3" < "8.2"`` as strings). Everything else in the project calls the
methods of :class:`TrtApi`, which pick the API each release actually has
(NVIDIA/TensorRT ``python/src/infer/pyCore.cpp`` per release branch and the
"8.x -> 10.x" / "10.x -> 11.x" migration guides):

==================  ============================  =================================  ==========================
step                8.0 - 8.4 (Nano: 8.0, 8.2)     8.5 - 9.x                          10.x / 11.x
==================  ============================  =================================  ==========================
network             EXPLICIT_BATCH flag            EXPLICIT_BATCH flag                always explicit; 11: always
                                                                                      strongly typed
workspace           max_workspace_size (< 8.4)     set_memory_pool_limit(WORKSPACE)   pool limit only
FP16                BuilderFlag.FP16               BuilderFlag.FP16                   10: flag; 11: FP16 ONNX +
                                                                                      STRONGLY_TYPED network
I/O tensors         bindings (num_bindings ...)    tensor names (num_io_tensors ...)  tensor names only
batch shape         set_binding_shape(i, shape)    set_input_shape(name, shape)       set_input_shape
execute             execute_async_v2(bindings)     set_tensor_address + v3            v3
==================  ============================  =================================  ==========================

``tensorrt`` is imported lazily (:func:`import_tensorrt`); importing this module
needs only the stdlib and numpy.
"""

import logging
import re
import threading

from .base import BackendError

log = logging.getLogger(__name__)

MIN_VERSION = (8, 0)
POOL_LIMIT_FROM = (8, 4)  # IBuilderConfig.set_memory_pool_limit / MemoryPoolType
TENSOR_API_FROM = (8, 5)  # num_io_tensors, set_input_shape, set_tensor_address, execute_async_v3
BINDING_API_UNTIL = (10, 0)  # bindings, max_workspace_size, EXPLICIT_BATCH needed: removed in 10
STRONGLY_TYPED_FLAG_FROM = (9, 0)  # NetworkDefinitionCreationFlag.STRONGLY_TYPED
STRONGLY_TYPED_ONLY_FROM = (11, 0)  # BuilderFlag.FP16 and platform_has_fast_fp16 removed
OPSET_LIMITS = [((8, 0), (9, 0), 13)]  # (from, until, highest ONNX opset the parser imports)

# Compute capabilities with fast native FP16 (TensorRT's platformHasFastFp16 answers the same).
_FAST_FP16_CC = ((5, 3), (6, 0), (6, 2))

INSTALL_HINT = (
    "On a Jetson, TensorRT comes with JetPack: `sudo apt-get install python3-libnvinfer` "
    "(and python3-libnvinfer-dev), then use the system python3 or a venv created with "
    "`python3 -m venv --system-site-packages` so `import tensorrt` works; pycuda: run scripts/setup_jetson.sh. "
    "On an x86 NVIDIA machine: pip install tensorrt pycuda"
)

_SEVERITIES = ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE")


def parse_version(text):
    """'8.2.1.8' -> (8, 2, 1, 8); '10.3.0.post1' -> (10, 3, 0). ValueError when no number leads."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(text))
    if not match:
        raise ValueError("not a version number: %r" % (text,))
    return tuple(int(part) for part in match.group(1).split("."))


def other_backends_text():
    """'--backend onnxruntime | opencv' for the backends importable here, for error messages."""
    try:
        from . import available_backends

        others = [name for name in available_backends() if name != "tensorrt"]
    except Exception:  # pragma: no cover - the registry itself is broken
        others = []
    if not others:
        return "No other backend is available here either (pip install onnxruntime)."
    return "Backends that work here: --backend " + " | ".join(others) + "."


def import_tensorrt():
    """The tensorrt module, or a BackendError that says what works instead and how to install it."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendError("TensorRT is not installed for this Python (%s). %s %s"
                           % (exc, other_backends_text(), INSTALL_HINT))
    return tensorrt


def import_cuda():
    """pycuda.driver (no pycuda.autoinit: contexts are made explicitly by the backend)."""
    try:
        import pycuda.driver as cuda
    except ImportError as exc:
        raise BackendError("pycuda is not installed for this Python (%s); the TensorRT backend needs it for "
                           "GPU buffers. Install it with scripts/setup_jetson.sh (compiles against CUDA; "
                           "needs /usr/local/cuda/bin on PATH) or pip install pycuda. %s"
                           % (exc, other_backends_text()))
    return cuda


def fast_fp16_for(compute_capability):
    """True/False from a 'major.minor' compute capability string; None when unknown."""
    if not compute_capability:
        return None
    try:
        cc = tuple(int(p) for p in str(compute_capability).split(".")[:2])
    except ValueError:
        return None
    return cc in _FAST_FP16_CC or cc >= (7, 0)


def max_opset_for(version):
    for start, until, opset in OPSET_LIMITS:
        if start <= version < until:
            return opset
    return None


# --------------------------------------------------------------------------
# A logger that keeps what TensorRT said, so errors can quote it
# --------------------------------------------------------------------------

_LOGGERS = {}
_LOGGERS_LOCK = threading.Lock()


def _severity_names(trt):
    """[(severity value, name)] for this tensorrt module (ILogger.Severity.X, aliased as ILogger.X)."""
    names = []
    holder = getattr(trt.ILogger, "Severity", trt.ILogger)
    for name in _SEVERITIES:
        value = getattr(holder, name, None)
        if value is not None:
            names.append((value, name))
    return names


def recording_logger(trt):
    """One process-wide trt.ILogger subclass instance per tensorrt module that records every message.

    TensorRT keeps a pointer to the logger passed to Builder/Runtime, so it must live as long as
    the process; one instance also avoids TensorRT's "different logger" warnings.
    """
    with _LOGGERS_LOCK:
        module, logger = _LOGGERS.get(id(trt), (None, None))
        if module is not trt:  # keeps the module alive too, so its id is not reused
            logger = _make_recording_logger(trt)
            _LOGGERS[id(trt)] = (trt, logger)
        return logger


def _make_recording_logger(trt):
    severity_names = _severity_names(trt)
    py_levels = {"INTERNAL_ERROR": logging.ERROR, "ERROR": logging.ERROR, "WARNING": logging.WARNING,
                 "INFO": logging.DEBUG, "VERBOSE": logging.DEBUG}

    class RecordingLogger(trt.ILogger):
        """Keeps (severity name, message) pairs; forwards warnings and errors to stdlib logging."""

        def __init__(self):
            trt.ILogger.__init__(self)
            self.messages = []
            self.lock = threading.Lock()

        def log(self, severity, msg):
            name = "INFO"
            for value, candidate in severity_names:
                if severity == value:
                    name = candidate
                    break
            with self.lock:
                self.messages.append((name, str(msg)))
                del self.messages[:-500]  # bounded: a build logs a lot at INFO
            log.log(py_levels[name], "TensorRT: %s", msg)

        def mark(self):
            with self.lock:
                return len(self.messages)

        def since(self, mark, levels=("INTERNAL_ERROR", "ERROR", "WARNING")):
            with self.lock:
                return [msg for name, msg in self.messages[max(0, min(mark, len(self.messages))):]
                        if name in levels]

    return RecordingLogger()


# --------------------------------------------------------------------------
# The version dispatch
# --------------------------------------------------------------------------


class IOTensor(object):
    """One engine input/output: name, binding index, shape (with -1 for dynamic), numpy dtype."""

    def __init__(self, name, index, is_input, shape, dtype):
        self.name = name
        self.index = index
        self.is_input = is_input
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype

    def __repr__(self):
        return "IOTensor(%r, index=%d, input=%s, shape=%s)" % (self.name, self.index, self.is_input, self.shape)


class TrtApi(object):
    """Version-specific TensorRT calls behind one small surface. ``trt`` is the tensorrt module."""

    def __init__(self, trt):
        self.trt = trt
        self.version_string = str(trt.__version__)
        try:
            self.version = parse_version(self.version_string)
        except ValueError:
            raise BackendError("cannot read the TensorRT version %r; reinstall TensorRT. %s"
                               % (self.version_string, INSTALL_HINT))
        if self.version < MIN_VERSION:
            raise BackendError(
                "TensorRT %s is too old: this runtime needs TensorRT 8.0 or newer (JetPack 4.6+). "
                "Upgrade JetPack, or use another backend. %s" % (self.version_string, other_backends_text()))
        self.logger = recording_logger(trt)

    # -- capabilities -------------------------------------------------------
    @property
    def tensor_api(self):
        return self.version >= TENSOR_API_FROM

    @property
    def strongly_typed_only(self):
        """TensorRT 11+: no BuilderFlag.FP16; FP16 comes from an FP16 ONNX in a strongly typed network."""
        return self.version >= STRONGLY_TYPED_ONLY_FROM

    @property
    def max_opset(self):
        return max_opset_for(self.version)

    # -- building -----------------------------------------------------------
    def create_network(self, builder):
        trt = self.trt
        flags = 0
        if self.version < BINDING_API_UNTIL:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        if self.strongly_typed_only:
            flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        return builder.create_network(flags)

    def set_workspace(self, config, nbytes):
        if self.version >= POOL_LIMIT_FROM:
            config.set_memory_pool_limit(self.trt.MemoryPoolType.WORKSPACE, int(nbytes))
        else:
            config.max_workspace_size = int(nbytes)

    def platform_has_fast_fp16(self, builder):
        """builder.platform_has_fast_fp16 where it exists (< 11); None on 11+ (the question is gone)."""
        if self.strongly_typed_only:
            return None
        return bool(builder.platform_has_fast_fp16)

    def enable_fp16(self, config):
        if self.strongly_typed_only:
            raise BackendError("TensorRT %s has no BuilderFlag.FP16: build a strongly typed network from the "
                               "FP16 ONNX instead" % self.version_string)
        config.set_flag(self.trt.BuilderFlag.FP16)

    def add_profile(self, builder, config, input_name, min_shape, opt_shape, max_shape):
        profile = builder.create_optimization_profile()
        profile.set_shape(input_name, tuple(min_shape), tuple(opt_shape), tuple(max_shape))
        config.add_optimization_profile(profile)
        return profile

    def use_timing_cache(self, config, data):
        """Attach a timing cache made from ``data`` (bytes, b'' for a new one); False if it did not fit."""
        cache = config.create_timing_cache(bytes(data or b""))
        ok = config.set_timing_cache(cache, False)
        if ok is False and data:
            log.warning("the timing cache was made by another TensorRT or GPU; starting a new one")
            cache = config.create_timing_cache(b"")
            config.set_timing_cache(cache, False)
            return False
        return True

    def timing_cache_bytes(self, config):
        cache = config.get_timing_cache()
        return bytes(cache.serialize()) if cache is not None else b""

    def build_serialized(self, builder, network, config):
        """The plan as bytes, or None when TensorRT failed (its log says why)."""
        plan = builder.build_serialized_network(network, config)
        return None if plan is None else bytes(plan)

    # -- running -------------------------------------------------------------
    def deserialize(self, runtime, data):
        return runtime.deserialize_cuda_engine(data)

    def io_tensors(self, engine):
        trt = self.trt
        tensors = []
        if self.tensor_api:
            for i in range(engine.num_io_tensors):
                name = engine.get_tensor_name(i)
                is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                tensors.append(IOTensor(name, i, is_input, engine.get_tensor_shape(name),
                                        trt.nptype(engine.get_tensor_dtype(name))))
        else:
            for i in range(engine.num_bindings):
                tensors.append(IOTensor(engine.get_binding_name(i), i, bool(engine.binding_is_input(i)),
                                        engine.get_binding_shape(i), trt.nptype(engine.get_binding_dtype(i))))
        return tensors

    def profile_shapes(self, engine, tensor, profile_index=0):
        """(min, opt, max) shapes of an input in an optimisation profile."""
        if self.tensor_api:
            shapes = engine.get_tensor_profile_shape(tensor.name, profile_index)
        else:
            shapes = engine.get_profile_shape(profile_index, tensor.index)
        return tuple(tuple(int(d) for d in shape) for shape in shapes)

    def set_input_shape(self, context, tensor, shape):
        if self.tensor_api:
            ok = context.set_input_shape(tensor.name, tuple(shape))
        else:
            ok = context.set_binding_shape(tensor.index, tuple(shape))
        if ok is False:
            raise BackendError("TensorRT refused input shape %s for %r (outside the engine's optimisation "
                               "profile?); rebuild the engine with a matching --max-batch" % (list(shape), tensor.name))

    def execute_async(self, context, tensors, addresses, stream_handle):
        """Run once on ``stream_handle``; ``addresses[i]`` is the device pointer of ``tensors[i]``."""
        if self.tensor_api:
            for i, tensor in enumerate(tensors):
                context.set_tensor_address(tensor.name, int(addresses[i]))
            ok = context.execute_async_v3(stream_handle)
        else:
            bindings = [0] * (max(t.index for t in tensors) + 1)
            for i, tensor in enumerate(tensors):
                bindings[tensor.index] = int(addresses[i])
            ok = context.execute_async_v2(bindings, stream_handle)
        if ok is False:
            raise BackendError("TensorRT failed to enqueue inference: %s"
                               % ("; ".join(self.logger.since(0)[-3:]) or "no message"))


def describe():
    """Facts for `edge_runtime info`: never raises. Errors come back as strings."""
    facts = {"tensorrt": None, "tensorrt_api": None, "pycuda": None, "gpu": None, "compute_capability": None,
             "fast_fp16": None, "errors": []}
    try:
        trt = import_tensorrt()
        facts["tensorrt"] = str(trt.__version__)
        version = parse_version(trt.__version__)
        facts["tensorrt_api"] = "tensor names (execute_async_v3)" if version >= TENSOR_API_FROM \
            else "bindings (execute_async_v2)"
    except Exception as exc:
        facts["errors"].append("tensorrt: %s" % exc)
    try:
        import pycuda

        facts["pycuda"] = str(getattr(pycuda, "VERSION_TEXT", None) or getattr(pycuda, "__version__", "unknown"))
    except Exception as exc:
        facts["errors"].append("pycuda: %s" % exc)
    try:
        from .. import engine_cache

        gpu = engine_cache.gpu_facts()
        facts["gpu"] = gpu.get("name")
        facts["compute_capability"] = gpu.get("compute_capability")
        facts["fast_fp16"] = fast_fp16_for(gpu.get("compute_capability"))
        if gpu.get("error"):
            facts["errors"].append("gpu: %s" % gpu["error"])
    except Exception as exc:  # pragma: no cover - engine_cache.gpu_facts never raises itself
        facts["errors"].append("gpu: %s" % exc)
    return facts
