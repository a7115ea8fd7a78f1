"""OpenCV DNN backend (cv2.dnn.readNetFromONNX): works with JetPack's OpenCV 4.1 and pip's 4.x.

The bundle's ONNX graph takes NHWC input [N, 28, 28, 1] (tf2onnx inserts the
transpose to NCHW), so the batch is fed exactly as the manifest describes it.
"""

import logging
import os

from ..manifest import onnx_path, verify_files
from .base import Backend, BackendError

LOG = logging.getLogger(__name__)

TARGETS = ("cpu", "opencl", "cuda")


class OpenCVDnnBackend(Backend):
    name = "opencv"

    def __init__(self, manifest, target="cpu", **_ignored):
        Backend.__init__(self, manifest)
        if target not in TARGETS:
            raise BackendError("unknown OpenCV DNN target %r; expected one of: %s" % (target, ", ".join(TARGETS)))
        self.target = target
        self.net = None
        self.cv2_version = None

    def activate_impl(self):
        import cv2

        self.cv2_version = cv2.__version__
        path = onnx_path(self.manifest)
        verify_files(self.manifest, names=[os.path.basename(path)])
        try:
            net = cv2.dnn.readNetFromONNX(path)
        except cv2.error as exc:
            raise BackendError(
                "OpenCV %s cannot import %s: %s. OpenCV 4.1 (JetPack 4.6) supports a subset of ONNX ops; "
                "use --backend onnxruntime or tensorrt, or re-export with `make export` (opset 13)"
                % (cv2.__version__, path, str(exc).strip().splitlines()[-1] if str(exc).strip() else exc)
            )
        if net.empty():
            raise BackendError(
                "OpenCV %s read an empty network from %s; re-export the bundle" % (cv2.__version__, path))
        if self.target == "cuda":
            if not hasattr(cv2.dnn, "DNN_BACKEND_CUDA"):  # added in OpenCV 4.2; JetPack 4.6 has 4.1.1
                raise BackendError(
                    "OpenCV %s has no CUDA DNN backend (needs OpenCV >= 4.2 built with CUDA); "
                    "use target cpu, or --backend tensorrt / onnxruntime" % cv2.__version__)
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_CUDA)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CUDA)
        elif self.target == "opencl":
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_OPENCL)
        else:
            net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
            net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        self.net = net

    def infer_impl(self, batch):
        import cv2

        self.net.setInput(batch)
        try:
            return self.net.forward()
        except cv2.error as exc:
            raise BackendError(
                "OpenCV %s failed to run the network on a batch of shape %s: %s; use --backend onnxruntime"
                % (self.cv2_version, list(batch.shape), str(exc).strip().splitlines()[-1])
            )

    def deactivate_impl(self):
        self.net = None

    def describe(self):
        info = Backend.describe(self)
        info.update({"opencv": self.cv2_version, "target": self.target})
        return info
