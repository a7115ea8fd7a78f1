"""The one backend interface: a context-managed runner (after Polygraphy's BaseRunner).

    with open_backend(manifest, prefer="auto") as net:
        probs = net.infer(batch)   # float32 [N,28,28,1] -> [N,10], N <= net.max_batch

Public ``activate() / infer() / deactivate()`` do the checks and call the small
``*_impl`` methods that each backend provides. No GPU context at import time.
"""

import numpy as np


class BackendError(RuntimeError):
    """A backend cannot be opened or used; the message says what and how to fix it."""


class Backend(object):
    """Base class. Subclasses set ``name`` and implement the ``*_impl`` methods."""

    name = "base"
    max_batch = 1 << 30

    def __init__(self, manifest):
        self.manifest = manifest
        shape = manifest["input"]["shape"]
        self.input_name = manifest["input"]["name"]
        self.input_shape = tuple(int(d) for d in shape[1:])  # per-sample shape
        self.num_classes = int(manifest["output"]["shape"][-1])
        self.is_active = False

    # -- public API -----------------------------------------------------
    def activate(self):
        if self.is_active:
            raise BackendError("%s backend is already active" % self.name)
        self.activate_impl()
        self.is_active = True
        return self

    def deactivate(self):
        if self.is_active:
            try:
                self.deactivate_impl()
            finally:
                self.is_active = False

    def infer(self, batch):
        """float32 [N, *input_shape] in [0, 1] -> float32 [N, num_classes] probabilities."""
        if not self.is_active:
            raise BackendError("%s backend is not active; use it as `with open_backend(...) as net:`" % self.name)
        batch = self.check_batch(batch)
        if batch.shape[0] == 0:
            return np.zeros((0, self.num_classes), np.float32)
        out = self.infer_impl(batch)
        return np.asarray(out, dtype=np.float32).reshape(batch.shape[0], self.num_classes)

    def check_batch(self, batch):
        if not isinstance(batch, np.ndarray):
            raise BackendError("input %r: expected a numpy array, got %s" % (self.input_name, type(batch).__name__))
        if batch.ndim == len(self.input_shape):
            batch = batch[None]
        if tuple(batch.shape[1:]) != self.input_shape:
            raise BackendError(
                "input %r: received shape %s, expected [N, %s] (from the manifest, layout %s)"
                % (self.input_name, list(batch.shape), ", ".join(str(d) for d in self.input_shape),
                   self.manifest["input"]["layout"])
            )
        if batch.dtype != np.float32:
            raise BackendError(
                "input %r: received dtype %s, expected float32 scaled to [0, 1] "
                "(use edge_runtime.preprocess to make batches)" % (self.input_name, batch.dtype)
            )
        if batch.shape[0] > self.max_batch:
            raise BackendError(
                "input %r: batch of %d is larger than this %s backend's maximum of %d; "
                "split the batch or rebuild the engine with a larger profile (--max-batch)"
                % (self.input_name, batch.shape[0], self.name, self.max_batch)
            )
        return np.ascontiguousarray(batch)

    # -- context manager ------------------------------------------------
    def __enter__(self):
        return self.activate()

    def __exit__(self, exc_type, exc, tb):
        self.deactivate()
        return False

    # -- for subclasses -------------------------------------------------
    def activate_impl(self):
        raise NotImplementedError

    def infer_impl(self, batch):
        raise NotImplementedError

    def deactivate_impl(self):
        pass

    def describe(self):
        """A short dict for logs and benchmark reports."""
        return {"backend": self.name, "max_batch": self.max_batch}
