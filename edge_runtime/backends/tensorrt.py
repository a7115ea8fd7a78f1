"""TensorRT backend: a cached FP16 engine run through pycuda with pinned buffers and one stream.

    with TensorRTBackend(manifest) as net:          # finds/builds the engine, makes the CUDA context
        probs = net.infer(batch)                     # float32 [N,28,28,1] -> [N,10], N <= net.max_batch
        probs, ms = net.infer_timed(batch)           # + {"h2d", "compute", "d2h", "end_to_end"} (CUDA events)

* The CUDA context is created in ``activate()`` (``pycuda.driver.init(); Device(0).make_context()``; never
  ``pycuda.autoinit``) and popped in ``deactivate()``. pycuda contexts are bound to the thread that made
  them, so every CUDA call must come from the thread that activated the backend: other threads get a
  BackendError instead of a crash.
* Host buffers are page-locked (``cuda.pagelocked_empty``) and sized for the profile's max batch; each call
  copies in, executes and copies out asynchronously on one stream, with the batch shape set per call.
* Version-specific TensorRT calls (bindings before 8.5, tensor names after) live in trt_compat.
"""

import logging
import threading
import time

import numpy as np

from .base import Backend, BackendError
from .trt_compat import TrtApi, import_cuda, import_tensorrt

log = logging.getLogger(__name__)


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, manifest, engine=None, build=True, precision="fp16", profile=None, workspace_mib=256,
                 trt_module=None, cuda_module=None, builder=None, gpu=None, **_ignored):
        Backend.__init__(self, manifest)
        self.engine_path = engine
        self.build = build
        self.precision = precision
        self.profile = profile
        self.workspace_mib = workspace_mib
        self._trt_module = trt_module
        self._cuda_module = cuda_module
        self._builder = builder
        self._gpu = gpu
        self._owner = None
        self._reset()

    def _reset(self):
        self._ctx = None
        self._engine = None
        self._context = None
        self._stream = None
        self._buffers = []  # device allocations, freed before the context goes
        self.max_batch = 0
        self.min_batch = 1

    @staticmethod
    def gpu_available():
        """True when pycuda sees at least one CUDA device (used by `--backend auto`)."""
        try:
            cuda = import_cuda()
            cuda.init()
            return cuda.Device.count() > 0
        except Exception:
            return False

    # -- lifecycle ------------------------------------------------------------
    def activate_impl(self):
        from .. import engine_cache

        trt = self._trt_module or import_tensorrt()
        cuda = self._cuda_module or import_cuda()
        self.api = TrtApi(trt)
        self.cuda = cuda
        self.engine_path = engine_cache.resolve_engine(
            self.manifest, self.api, engine=self.engine_path, build=self.build, precision=self.precision,
            profile=self.profile, workspace_mib=self.workspace_mib, gpu=self._gpu, builder=self._builder)
        with open(self.engine_path, "rb") as handle:
            plan = handle.read()
        self._owner = threading.current_thread()
        cuda.init()
        self._ctx = cuda.Device(0).make_context()
        try:
            self._load(plan)
        except BaseException:
            self._release()
            raise

    def _load(self, plan):
        api, cuda = self.api, self.cuda
        self._runtime = api.trt.Runtime(api.logger)
        mark = api.logger.mark()
        self._engine = api.deserialize(self._runtime, plan)
        if self._engine is None:
            said = " | ".join(api.logger.since(mark)) or "no message from TensorRT"
            raise BackendError(
                "TensorRT %s could not load engine %s: %s. The plan is corrupt, truncated, or was built by "
                "another TensorRT version or GPU; delete it and rebuild: python3 -m edge_runtime build-engine "
                "--model %s --force" % (api.version_string, self.engine_path, said,
                                        self.manifest.get("_dir", "artifacts/<model>")))
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise BackendError("TensorRT could not create an execution context (GPU memory?): %s"
                               % " | ".join(api.logger.since(mark)))
        tensors = api.io_tensors(self._engine)
        inputs = [t for t in tensors if t.is_input]
        outputs = [t for t in tensors if not t.is_input]
        if len(inputs) != 1 or len(outputs) != 1:
            raise BackendError("engine %s has %d inputs and %d outputs; expected 1 and 1"
                               % (self.engine_path, len(inputs), len(outputs)))
        self._input, self._output = inputs[0], outputs[0]
        if tuple(self._input.shape[1:]) != self.input_shape:
            raise BackendError("engine %s takes %s but the manifest says [N, %s]; rebuild the engine for this bundle"
                               % (self.engine_path, list(self._input.shape),
                                  ", ".join(str(d) for d in self.input_shape)))
        low, _, high = api.profile_shapes(self._engine, self._input, 0)
        self.min_batch, self.max_batch = int(low[0]), int(high[0])
        out_shape = (self.max_batch,) + tuple(self._output.shape[1:])
        self._host_in = cuda.pagelocked_empty((self.max_batch,) + self.input_shape, self._input.dtype)
        self._host_out = cuda.pagelocked_empty(out_shape, self._output.dtype)
        self._dev_in = cuda.mem_alloc(self._host_in.nbytes)
        self._dev_out = cuda.mem_alloc(self._host_out.nbytes)
        self._buffers = [self._dev_in, self._dev_out]
        self._stream = cuda.Stream()

    def deactivate(self):
        if self.is_active:
            self.check_thread()  # before the base class marks us inactive: the context must not leak
        Backend.deactivate(self)

    def deactivate_impl(self):
        self._release()

    def _release(self):
        """Free GPU objects inside the context, then pop and destroy it."""
        try:
            for buf in self._buffers:
                buf.free()
            self._context = None
            self._engine = None
            self._runtime = None
            self._stream = None
        finally:
            if self._ctx is not None:
                self._ctx.pop()
                self._ctx.detach()
            self._reset()

    # -- inference ------------------------------------------------------------
    def check_thread(self):
        if self._owner is not None and threading.current_thread() is not self._owner:
            raise BackendError(
                "TensorRT backend used from thread %r but its CUDA context belongs to thread %r (pycuda "
                "contexts are thread-bound); activate, infer and close the backend in the same thread"
                % (threading.current_thread().name, self._owner.name))

    def infer_impl(self, batch):
        return self._run(batch, timed=False)[0]

    def infer_timed(self, batch):
        """(probabilities, {"h2d", "compute", "d2h", "end_to_end"} in ms from CUDA events)."""
        if not self.is_active:
            raise BackendError("tensorrt backend is not active; use it as `with open_backend(...) as net:`")
        batch = self.check_batch(batch)
        probs, times = self._run(batch, timed=True)
        return np.asarray(probs, np.float32).reshape(len(batch), self.num_classes), times

    def _run(self, batch, timed):
        self.check_thread()
        api, cuda = self.api, self.cuda
        n = len(batch)
        rows = max(n, self.min_batch)  # pad up to the profile's minimum
        host_in = self._host_in[:rows]
        host_in[:n] = batch
        if rows > n:
            host_in[n:] = 0
        host_out = self._host_out[:rows]
        api.set_input_shape(self._context, self._input, (rows,) + self.input_shape)
        events = [cuda.Event() for _ in range(4)] if timed else None
        wall = time.time()
        self._record(events, 0)
        cuda.memcpy_htod_async(self._dev_in, host_in, self._stream)
        self._record(events, 1)
        api.execute_async(self._context, [self._input, self._output], [self._dev_in, self._dev_out],
                          self._stream.handle)
        self._record(events, 2)
        cuda.memcpy_dtoh_async(host_out, self._dev_out, self._stream)
        self._record(events, 3)
        self._stream.synchronize()
        probs = np.array(host_out[:n], dtype=np.float32)
        if not timed:
            return probs, None
        times = {"h2d": events[1].time_since(events[0]), "compute": events[2].time_since(events[1]),
                 "d2h": events[3].time_since(events[2]), "end_to_end": events[3].time_since(events[0]),
                 "wall": (time.time() - wall) * 1000.0}
        return probs, times

    def _record(self, events, i):
        if events is not None:
            events[i].record(self._stream)

    def describe(self):
        facts = Backend.describe(self)
        facts.update({"engine": self.engine_path, "precision": self.precision,
                      "tensorrt": getattr(getattr(self, "api", None), "version_string", None),
                      "min_batch": self.min_batch})
        return facts
