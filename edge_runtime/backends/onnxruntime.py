"""ONNX Runtime backend: CPU by default; CUDA or TensorRT execution providers when asked.

    with OnnxRuntimeBackend(manifest, providers="cpu", intra_op_threads=1) as net:
        probs = net.infer(batch)

onnxruntime is imported in activate(), never at module import.
"""

import logging
import os

from ..manifest import onnx_path, verify_files
from .base import Backend, BackendError

LOG = logging.getLogger(__name__)

# short names accepted by --ort-provider -> ONNX Runtime execution provider names
PROVIDER_NAMES = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def resolve_providers(requested, available):
    """Map a short name (cpu|cuda|tensorrt) or a list of EP names to those available; explain what is missing."""
    if requested is None:
        requested = "cpu"
    names = PROVIDER_NAMES.get(requested, None) if isinstance(requested, str) else list(requested)
    if names is None:
        raise BackendError(
            "unknown ONNX Runtime provider %r; expected one of: %s" % (requested, ", ".join(sorted(PROVIDER_NAMES)))
        )
    wanted = names[0]
    if wanted not in available:
        raise BackendError(
            "ONNX Runtime execution provider %s is not available in this onnxruntime build (available: %s); "
            "use --ort-provider cpu, or install onnxruntime-gpu (on a Jetson: NVIDIA's wheel for your JetPack)"
            % (wanted, ", ".join(available))
        )
    return [n for n in names if n in available]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, manifest, providers="cpu", intra_op_threads=None, fp16=False, **_ignored):
        Backend.__init__(self, manifest)
        self.requested_providers = providers
        self.intra_op_threads = intra_op_threads
        self.fp16 = bool(fp16)
        self.session = None
        self.providers = []
        self.output_name = manifest["output"]["name"]

    def activate_impl(self):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(
                "onnxruntime is not installed (%s); pip install onnxruntime, or use --backend opencv" % exc)
        path = onnx_path(self.manifest, fp16=self.fp16)
        verify_files(self.manifest, names=[os.path.basename(path)])
        providers = resolve_providers(self.requested_providers, ort.get_available_providers())
        options = ort.SessionOptions()
        if self.intra_op_threads:
            options.intra_op_num_threads = int(self.intra_op_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(path, sess_options=options, providers=providers)
        except Exception as exc:
            raise BackendError(
                "ONNX Runtime %s cannot load %s: %s. If it reports an unsupported IR version or opset, "
                "re-export the bundle with `make export` (opset 13, IR 7) or upgrade onnxruntime"
                % (ort.__version__, path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            )
        self.providers = self.session.get_providers()
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if self.input_name not in inputs:
            raise BackendError(
                "%s has inputs %s but the manifest names input %r; the manifest and model do not belong "
                "together: re-export the bundle (`make export`)" % (path, inputs, self.input_name)
            )
        if self.output_name not in outputs:
            LOG.warning("manifest output %r not in model outputs %s; using %s", self.output_name, outputs, outputs[0])
            self.output_name = outputs[0]
        LOG.debug("onnxruntime %s session on %s", ort.__version__, self.providers)

    def infer_impl(self, batch):
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def deactivate_impl(self):
        self.session = None

    def describe(self):
        info = Backend.describe(self)
        info.update({"providers": list(self.providers), "intra_op_threads": self.intra_op_threads})
        return info
