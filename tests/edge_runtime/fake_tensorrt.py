"""A FAKE `tensorrt` module (one version's API surface) and a FAKE `pycuda.driver`, for CPU tests only.

What it is for: proving that edge_runtime/backends/trt_compat.py and the code around it call the API
that each TensorRT release really has. ``make_fake_trt("8.2.1")`` returns a module-like object with
exactly the attributes that version exposes (per NVIDIA/TensorRT pyCore.cpp and the 8.x->10.x and
10.x->11.x migration guides); an attribute a release does not have raises AttributeError, as it would
on the device:

  binding API (num_bindings, get_binding_*, binding_is_input, get_profile_shape,
  set_binding_shape, execute_async_v2), max_workspace_size, Builder.build_engine   8.0 .. 9.x
  set_memory_pool_limit + MemoryPoolType                                          8.4 ..
  tensor API (num_io_tensors, get_tensor_*, get_tensor_profile_shape,
  set_input_shape, set_tensor_address, execute_async_v3) + TensorIOMode           8.5 ..
  NetworkDefinitionCreationFlag.STRONGLY_TYPED                                    9.0 ..
  BuilderFlag.FP16, Builder.platform_has_fast_fp16                                8.0 .. 10.x
  NetworkDefinitionCreationFlag.EXPLICIT_BATCH (ignored from 10)                  8.0 .. 10.x (assumed gone in 11)

What it is NOT: TensorRT. "Engines" are the ONNX bytes behind a small header, run with ONNX Runtime
(outputs rounded to float16 when FP16 was enabled); the fake pycuda keeps "device memory" in host
bytearrays. Numbers measured through it say nothing about a GPU; the real thing runs only in
tests/edge_runtime/test_tensorrt_jetson.py and `make verify-jetson`.
"""

import json
import threading
import time
import types

import numpy as np

from edge_runtime.backends.trt_compat import parse_version

MAGIC = b"FAKETRTPLAN\n"
SUPPORTED_OPS = {"Reshape", "MatMul", "Add", "Softmax", "Conv", "Relu", "MaxPool", "Gemm", "Flatten",
                 "Transpose", "Cast", "Identity", "Mul", "Sub", "BatchNormalization", "Dropout", "AveragePool"}

# attribute -> (first version with it, first version without it or None)
BINDING_API = ((8, 0), (10, 0))
TENSOR_API = ((8, 5), None)
SURFACE = {
    "Builder.build_engine": BINDING_API,
    "Builder.max_batch_size": BINDING_API,
    "Builder.platform_has_fast_fp16": ((8, 0), (11, 0)),
    "IBuilderConfig.max_workspace_size": BINDING_API,
    "IBuilderConfig.set_memory_pool_limit": ((8, 4), None),
    "BuilderFlag.FP16": ((8, 0), (11, 0)),
    "NetworkDefinitionCreationFlag.EXPLICIT_BATCH": ((8, 0), (11, 0)),
    "NetworkDefinitionCreationFlag.STRONGLY_TYPED": ((9, 0), None),
    "ICudaEngine.num_bindings": BINDING_API,
    "ICudaEngine.get_binding_name": BINDING_API,
    "ICudaEngine.get_binding_shape": BINDING_API,
    "ICudaEngine.get_binding_dtype": BINDING_API,
    "ICudaEngine.binding_is_input": BINDING_API,
    "ICudaEngine.get_profile_shape": BINDING_API,
    "ICudaEngine.num_io_tensors": TENSOR_API,
    "ICudaEngine.get_tensor_name": TENSOR_API,
    "ICudaEngine.get_tensor_mode": TENSOR_API,
    "ICudaEngine.get_tensor_shape": TENSOR_API,
    "ICudaEngine.get_tensor_dtype": TENSOR_API,
    "ICudaEngine.get_tensor_profile_shape": TENSOR_API,
    "IExecutionContext.set_binding_shape": BINDING_API,
    "IExecutionContext.execute_async_v2": BINDING_API,
    "IExecutionContext.set_input_shape": TENSOR_API,
    "IExecutionContext.set_tensor_address": TENSOR_API,
    "IExecutionContext.execute_async_v3": TENSOR_API,
    "module.MemoryPoolType": ((8, 4), None),
    "module.TensorIOMode": TENSOR_API,
}


def has(version, attribute):
    start, until = SURFACE[attribute]
    return start <= version and (until is None or version < until)


class _Missing(object):
    """Descriptor for an attribute this TensorRT version does not have: reading or writing raises."""

    def __init__(self, qualname, version):
        self.qualname = qualname
        self.version = version

    def __get__(self, obj, owner=None):
        raise AttributeError("fake TensorRT %s has no %s" % (self.version, self.qualname))

    def __set__(self, obj, value):
        raise AttributeError("fake TensorRT %s has no %s" % (self.version, self.qualname))


class _Flag(int):
    pass


# ----------------------------------------------------------------------------
# fake pycuda.driver
# ----------------------------------------------------------------------------


class FakeCuda(object):
    """Module-like stand-in for pycuda.driver with host-backed "device" memory and per-thread contexts."""

    def __init__(self, device_name="NVIDIA Tegra X1", compute_capability=(5, 3), devices=1):
        self.device_name = device_name
        self.cc = tuple(compute_capability)
        self.devices = devices
        self.memory = {}  # address -> bytearray
        self.pinned = set()  # id() of page-locked arrays
        self.next_address = 0x10000
        self.local = threading.local()
        self.calls = []
        self.contexts_made = 0
        cuda = self

        class Device(object):
            def __init__(self, index):
                if index >= cuda.devices:
                    raise RuntimeError("cuDeviceGet failed: invalid device ordinal")
                self.index = index

            @staticmethod
            def count():
                return cuda.devices

            def name(self):
                return cuda.device_name

            def compute_capability(self):
                return cuda.cc

            def make_context(self):
                ctx = FakeContext(cuda)
                cuda.contexts_made += 1
                cuda.stack().append(ctx)
                return ctx

        class Stream(object):
            def __init__(self):
                cuda.require_context("Stream()")
                self.handle = cuda.alloc_address(0)

            def synchronize(self):
                cuda.calls.append("synchronize")

        class Event(object):
            def __init__(self):
                self.at = None

            def record(self, stream=None):
                self.at = time.time()

            def synchronize(self):
                pass

            def time_since(self, other):
                return (self.at - other.at) * 1000.0

        self.Device = Device
        self.Stream = Stream
        self.Event = Event

    # state helpers
    def stack(self):
        if not hasattr(self.local, "stack"):
            self.local.stack = []
        return self.local.stack

    def current(self):
        stack = self.stack()
        return stack[-1] if stack else None

    def require_context(self, what):
        if self.current() is None:
            raise RuntimeError("fake pycuda: %s needs a current CUDA context in thread %s"
                               % (what, threading.current_thread().name))

    def alloc_address(self, nbytes):
        address = self.next_address
        self.next_address += max(256, nbytes + 256)
        self.memory[address] = bytearray(nbytes)
        return address

    # pycuda.driver functions
    def init(self):
        self.calls.append("init")

    def pagelocked_empty(self, shape, dtype):
        self.require_context("pagelocked_empty")
        array = np.empty(shape, dtype)
        self.pinned.add(id(array))
        return array

    def mem_alloc(self, nbytes):
        self.require_context("mem_alloc")
        return FakeAllocation(self, self.alloc_address(int(nbytes)))

    def memcpy_htod_async(self, dest, src, stream=None):
        self.require_context("memcpy_htod_async")
        self.calls.append("htod")
        data = np.ascontiguousarray(src).tobytes()
        self.memory[int(dest)][:len(data)] = data

    def memcpy_dtoh_async(self, dest, src, stream=None):
        self.require_context("memcpy_dtoh_async")
        self.calls.append("dtoh")
        view = dest.reshape(-1).view(np.uint8)
        view[:] = np.frombuffer(bytes(self.memory[int(src)][:view.nbytes]), np.uint8)

    def read(self, address, shape, dtype):
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.frombuffer(bytes(self.memory[int(address)][:count]), dtype).reshape(shape)

    def write(self, address, array):
        data = np.ascontiguousarray(array).tobytes()
        self.memory[int(address)][:len(data)] = data


class FakeContext(object):
    def __init__(self, cuda):
        self.cuda = cuda
        self.detached = False

    def pop(self):
        stack = self.cuda.stack()
        if not stack or stack[-1] is not self:
            raise RuntimeError("fake pycuda: popping a context that is not current in this thread")
        stack.pop()

    def detach(self):
        self.detached = True


class FakeAllocation(object):
    def __init__(self, cuda, address):
        self.cuda = cuda
        self.address = address
        self.freed = False

    def __int__(self):
        return self.address

    def free(self):
        self.cuda.require_context("free")
        self.freed = True
        self.cuda.memory.pop(self.address, None)


# ----------------------------------------------------------------------------
# fake tensorrt
# ----------------------------------------------------------------------------


class FakeState(object):
    def __init__(self, version, compute_capability="5.3", fast_fp16=True, cuda=None):
        self.version = version
        self.compute_capability = compute_capability
        self.fast_fp16 = fast_fp16
        self.fail_build = None  # None | "oom"
        self.cuda = cuda
        self.calls = []


def make_fake_trt(version="8.2.1.8", compute_capability="5.3", fast_fp16=True, cuda=None):
    """A module-like fake of one TensorRT release (see the module docstring). ``cuda``: a FakeCuda."""
    text = str(version)
    ver = parse_version(text)
    state = FakeState(text, compute_capability, fast_fp16, cuda)
    calls = state.calls
    trt = types.ModuleType("tensorrt")
    trt.__version__ = text
    trt.fake_state = state

    def missing_in(cls, owner, names):
        for name in names:
            if not has(ver, owner + "." + name):
                setattr(cls, name, _Missing(owner + "." + name, text))
        return cls

    # -- enums ------------------------------------------------------------
    class Severity(object):
        INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = [_Flag(i) for i in range(5)]

    class ILogger(object):
        pass

    ILogger.Severity = Severity
    for name in ("INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"):
        setattr(ILogger, name, getattr(Severity, name))

    class Logger(ILogger):
        def __init__(self, min_severity=Severity.WARNING):
            self.min_severity = min_severity

        def log(self, severity, msg):
            pass

    class DataType(object):
        FLOAT, HALF, INT8, INT32 = [_Flag(i) for i in range(4)]

    np_of = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
             DataType.INT32: np.int32}

    def nptype(dtype):
        return np_of[dtype]

    class BuilderFlag(object):
        FP16 = _Flag(0)
        INT8 = _Flag(1)

    missing_in(BuilderFlag, "BuilderFlag", ["FP16"])

    class NetworkDefinitionCreationFlag(object):
        EXPLICIT_BATCH = _Flag(0)
        STRONGLY_TYPED = _Flag(1)

    missing_in(NetworkDefinitionCreationFlag, "NetworkDefinitionCreationFlag", ["EXPLICIT_BATCH", "STRONGLY_TYPED"])

    class MemoryPoolType(object):
        WORKSPACE = _Flag(0)

    class TensorIOMode(object):
        NONE, INPUT, OUTPUT = [_Flag(i) for i in range(3)]

    def log(logger, severity, message):
        logger.log(severity, message)

    # -- network + parser -------------------------------------------------------
    class FakeITensor(object):
        def __init__(self, name, shape, dtype):
            self.name = name
            self.shape = tuple(shape)
            self.dtype = dtype

    class INetworkDefinition(object):
        def __init__(self, flags):
            self.flags = flags
            self.inputs = []
            self.outputs = []
            self.onnx = None

        @property
        def num_inputs(self):
            return len(self.inputs)

        @property
        def num_outputs(self):
            return len(self.outputs)

        def get_input(self, i):
            return self.inputs[i]

        def get_output(self, i):
            return self.outputs[i]

        def has_flag(self, flag):
            return bool(self.flags & (1 << int(flag)))

    class ParserError(object):
        def __init__(self, node, message):
            self.node_index = node
            self.message = message

        def desc(self):
            return self.message

        def node(self):
            return self.node_index

        def __str__(self):
            return "In node %d (parseGraph): %s" % (self.node_index, self.message)

    class OnnxParser(object):
        def __init__(self, network, logger):
            self.network = network
            self.logger = logger
            self.errors = []

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

        def parse(self, data):
            import onnx

            calls.append(("parse", len(data)))
            try:
                model = onnx.load_model_from_string(bytes(data))
            except Exception:
                self.errors.append(ParserError(-1, "INVALID_GRAPH: Failed to parse the ONNX model"))
                return False
            opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
            if ver < (9, 0) and opset > 13:
                self.errors.append(ParserError(-1, "UNSUPPORTED_GRAPH: opset %d is newer than this parser "
                                                   "supports (13)" % opset))
                return False
            for i, node in enumerate(model.graph.node):
                if node.op_type not in SUPPORTED_OPS:
                    self.errors.append(ParserError(i, "UNSUPPORTED_NODE: No importer registered for op: %s"
                                                      % node.op_type))
            if self.errors:
                return False
            inits = {t.name for t in model.graph.initializer}
            elem = {1: DataType.FLOAT, 10: DataType.HALF}
            for value in model.graph.input:
                if value.name in inits:
                    continue
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
                self.network.inputs.append(FakeITensor(value.name, dims, elem[value.type.tensor_type.elem_type]))
            for value in model.graph.output:
                dims = [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]
                self.network.outputs.append(FakeITensor(value.name, dims, elem[value.type.tensor_type.elem_type]))
            self.network.onnx = bytes(data)
            return True

    # -- builder ---------------------------------------------------------------
    class IOptimizationProfile(object):
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, opt, high):
            calls.append(("set_shape", name, tuple(low), tuple(opt), tuple(high)))
            self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

    class ITimingCache(object):
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return memoryview(self.data)

    class IBuilderConfig(object):
        def __init__(self):
            self.flags = set()
            self.profiles = []
            self.workspace = None
            self.timing_cache = None

        def set_flag(self, flag):
            calls.append(("set_flag", int(flag)))
            self.flags.add(int(flag))

        def get_flag(self, flag):
            return int(flag) in self.flags

        @property
        def max_workspace_size(self):
            return self.workspace

        @max_workspace_size.setter
        def max_workspace_size(self, value):
            calls.append(("max_workspace_size", value))
            self.workspace = value

        def set_memory_pool_limit(self, pool, size):
            calls.append(("set_memory_pool_limit", int(pool), size))
            self.workspace = size

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data):
            calls.append(("create_timing_cache", bytes(data)))
            return ITimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            tag = ("FAKETIMING %s sm%s" % (text, state.compute_capability)).encode()
            if cache.data and not cache.data.startswith(tag):
                calls.append(("set_timing_cache", False))
                return False
            if not cache.data:
                cache.data = tag + b" builds=0"
            calls.append(("set_timing_cache", True))
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

    missing_in(IBuilderConfig, "IBuilderConfig", ["max_workspace_size", "set_memory_pool_limit"])

    class IHostMemory(object):
        def __init__(self, data):
            self.data = data

        def __bytes__(self):
            return self.data

    class Builder(object):
        def __init__(self, logger):
            self.logger = logger
            calls.append(("Builder",))

        @property
        def platform_has_fast_fp16(self):
            return state.fast_fp16

        @property
        def max_batch_size(self):
            return 1

        def build_engine(self, network, config):
            raise AssertionError("deprecated build_engine must not be used")

        def create_network(self, flags=0):
            calls.append(("create_network", flags))
            return INetworkDefinition(flags)

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        def build_serialized_network(self, network, config):
            calls.append(("build_serialized_network",))
            explicit = ver >= (10, 0) or network.has_flag(NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
            if not explicit:
                log(self.logger, Severity.ERROR, "Network must have explicit batch (implicit batch is deprecated)")
                return None
            if config.workspace is None:
                log(self.logger, Severity.WARNING, "no workspace limit set")
            if state.fail_build == "oom":
                log(self.logger, Severity.ERROR, "Requested amount of GPU memory (%d bytes) could not be "
                    "allocated. There may not be enough free memory for allocation to succeed." % config.workspace)
                return None
            dynamic = [t for t in network.inputs if -1 in t.shape]
            if dynamic and not config.profiles:
                log(self.logger, Severity.ERROR, "Network has dynamic or shape inputs, but no optimization "
                    "profile has been defined.")
                return None
            strongly = ver >= (11, 0) or (has(ver, "NetworkDefinitionCreationFlag.STRONGLY_TYPED")
                                          and network.has_flag(NetworkDefinitionCreationFlag.STRONGLY_TYPED))
            if strongly and config.flags:
                log(self.logger, Severity.ERROR, "precision flags are not allowed with a strongly typed network")
                return None
            inp, out = network.inputs[0], network.outputs[0]
            profile = config.profiles[0].shapes[inp.name]
            if config.timing_cache is not None:
                config.timing_cache.data += b"+"
            header = {"version": text, "cc": state.compute_capability,
                      "fp16": (has(ver, "BuilderFlag.FP16") and int(BuilderFlag.FP16) in config.flags)
                      or (strongly and inp.dtype == DataType.HALF) or _graph_is_fp16(network.onnx),
                      "input": [inp.name, list(inp.shape), int(inp.dtype)],
                      "output": [out.name, list(out.shape), int(out.dtype)],
                      "profile": [list(s) for s in profile], "onnx_bytes": len(network.onnx)}
            return IHostMemory(MAGIC + json.dumps(header).encode() + b"\n" + network.onnx)

    missing_in(Builder, "Builder", ["build_engine", "max_batch_size", "platform_has_fast_fp16"])

    # -- runtime ---------------------------------------------------------------
    class Runtime(object):
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            data = bytes(data)
            calls.append(("deserialize_cuda_engine", len(data)))
            if not data.startswith(MAGIC) or b"\n" not in data[len(MAGIC):]:
                log(self.logger, Severity.ERROR, "1: [stdArchiveReader.cpp::StdArchiveReader::30] Error Code 1: "
                    "Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed."
                    "Magic tag does not match)")
                log(self.logger, Severity.ERROR, "4: [runtime.cpp::deserializeCudaEngine::50] Error Code 4: "
                    "Internal Error (Engine deserialization failed.)")
                return None
            head, _, onnx_bytes = data[len(MAGIC):].partition(b"\n")
            try:
                header = json.loads(head.decode())
            except ValueError:
                header = None
            if header is None or len(onnx_bytes) != header["onnx_bytes"]:
                log(self.logger, Severity.ERROR, "1: [stdArchiveReader.cpp::StdArchiveReader::40] Error Code 1: "
                    "Serialization (Serialization assertion stdVersionRead == serializationVersion failed.)")
                return None
            if header["version"] != text:
                log(self.logger, Severity.ERROR, "1: [stdArchiveReader.cpp::StdArchiveReader::40] Error Code 1: "
                    "Serialization (Serialization assertion stdVersionRead == serializationVersion failed.Version tag "
                    "does not match. Note: Current Version: %s, Serialized Engine Version: %s)"
                    % (text, header["version"]))
                log(self.logger, Severity.ERROR, "The engine plan file is not compatible with this version of "
                    "TensorRT, expecting library version %s got %s, please rebuild." % (text, header["version"]))
                return None
            if header["cc"] != state.compute_capability:
                log(self.logger, Severity.ERROR, "The engine plan file is generated on an incompatible device, "
                    "expecting compute %s got compute %s, please rebuild." % (state.compute_capability, header["cc"]))
                return None
            return ICudaEngine(header, onnx_bytes)

    class ICudaEngine(object):
        def __init__(self, header, onnx_bytes):
            self.header = header
            self.onnx = onnx_bytes
            self.io = [header["input"], header["output"]]
            self.session = None

        # binding API
        @property
        def num_bindings(self):
            return 2

        def get_binding_name(self, i):
            return self.io[i][0]

        def binding_is_input(self, i):
            return i == 0

        def get_binding_shape(self, i):
            return tuple(self.io[i][1])

        def get_binding_dtype(self, i):
            return _Flag(self.io[i][2])

        def get_profile_shape(self, profile_index, binding):
            index = binding if isinstance(binding, int) else [n for n, _, _ in self.io].index(binding)
            assert index == 0 and profile_index == 0
            return [tuple(s) for s in self.header["profile"]]

        # tensor API
        @property
        def num_io_tensors(self):
            return 2

        def get_tensor_name(self, i):
            return self.io[i][0]

        def get_tensor_mode(self, name):
            return TensorIOMode.INPUT if name == self.io[0][0] else TensorIOMode.OUTPUT

        def get_tensor_shape(self, name):
            return tuple(self._by_name(name)[1])

        def get_tensor_dtype(self, name):
            return _Flag(self._by_name(name)[2])

        def get_tensor_profile_shape(self, name, profile_index):
            assert name == self.io[0][0] and profile_index == 0
            return [tuple(s) for s in self.header["profile"]]

        def _by_name(self, name):
            return [io for io in self.io if io[0] == name][0]

        def create_execution_context(self):
            return IExecutionContext(self)

        def run(self, batch):
            import onnxruntime

            if self.session is None:
                self.session = onnxruntime.InferenceSession(self.onnx, providers=["CPUExecutionProvider"])
            name = self.session.get_inputs()[0].name
            out = self.session.run(None, {name: batch})[0]
            if self.header["fp16"]:
                out = out.astype(np.float16)
            return out

    missing_in(ICudaEngine, "ICudaEngine", ["num_bindings", "get_binding_name", "get_binding_shape",
                                            "get_binding_dtype", "binding_is_input", "get_profile_shape",
                                            "num_io_tensors", "get_tensor_name", "get_tensor_mode",
                                            "get_tensor_shape", "get_tensor_dtype", "get_tensor_profile_shape"])

    class IExecutionContext(object):
        def __init__(self, engine):
            self.engine = engine
            self.shape = None
            self.addresses = {}

        def _set_shape(self, shape):
            low, _, high = self.engine.header["profile"]
            if len(shape) != len(low) or not all(a <= s <= b for a, s, b in zip(low, shape, high, strict=True)):
                log_error = "setInputShape: shape %s is outside the profile %s..%s" % (list(shape), low, high)
                calls.append(("shape_rejected", log_error))
                return False
            self.shape = tuple(shape)
            return True

        def set_binding_shape(self, index, shape):
            calls.append(("set_binding_shape", index, tuple(shape)))
            assert index == 0
            return self._set_shape(shape)

        def set_input_shape(self, name, shape):
            calls.append(("set_input_shape", name, tuple(shape)))
            assert name == self.engine.io[0][0]
            return self._set_shape(shape)

        def set_tensor_address(self, name, address):
            self.addresses[name] = int(address)
            return True

        def _execute(self, in_address, out_address):
            cuda = state.cuda
            cuda.require_context("execute")
            dtype_in = np_of[self.engine.io[0][2]]
            dtype_out = np_of[self.engine.io[1][2]]
            batch = cuda.read(in_address, self.shape, dtype_in).astype(dtype_in)
            out = self.engine.run(batch.astype(np.float32) if dtype_in == np.float32 else batch)
            cuda.write(out_address, out.astype(dtype_out))
            return True

        def execute_async_v2(self, bindings, stream_handle):
            calls.append(("execute_async_v2", len(bindings)))
            return self._execute(bindings[0], bindings[1])

        def execute_async_v3(self, stream_handle):
            calls.append(("execute_async_v3",))
            return self._execute(self.addresses[self.engine.io[0][0]], self.addresses[self.engine.io[1][0]])

    missing_in(IExecutionContext, "IExecutionContext", ["set_binding_shape", "execute_async_v2",
                                                        "set_input_shape", "set_tensor_address",
                                                        "execute_async_v3"])

    for name, value in [("ILogger", ILogger), ("Logger", Logger), ("DataType", DataType), ("nptype", nptype),
                        ("BuilderFlag", BuilderFlag), ("NetworkDefinitionCreationFlag", NetworkDefinitionCreationFlag),
                        ("Builder", Builder), ("OnnxParser", OnnxParser), ("Runtime", Runtime)]:
        setattr(trt, name, value)
    if has(ver, "module.MemoryPoolType"):
        trt.MemoryPoolType = MemoryPoolType
    if has(ver, "module.TensorIOMode"):
        trt.TensorIOMode = TensorIOMode
    return trt


def _graph_is_fp16(onnx_bytes):
    """True when the ONNX computes in float16 (an FP16 export), for the strongly typed path."""
    import onnx

    model = onnx.load_model_from_string(onnx_bytes)
    return any(init.data_type == 10 for init in model.graph.initializer)
