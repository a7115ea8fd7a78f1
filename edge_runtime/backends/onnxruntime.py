"""ONNX Runtime backend: CPU by default; CUDA or TensorRT execution providers when asked.

    with OnnxRuntimeBackend(manifest, providers="cpu", intra_op_threads=1) as net:
        probs = net.infer(batch)

Precision (``precision``, the CLI's ``--ort-precision``): ``fp32`` runs model.onnx; ``int8`` runs
the bundle's model.int8.onnx (``python -m convert int8``); ``auto`` (the default) takes INT8 where
it is worth it and safe: the bundle has it and its parity check passed, the provider is the CPU,
and the CPU has int8 dot-product instructions (x86 AVX-512 VNNI or AVX-VNNI, Arm's dot product:
1.8-1.9x faster there, measured); else FP32.

onnxruntime is imported in activate(), never at module import.
"""

import logging
import os

from ..environment import cpu_int8_dot
from ..manifest import ManifestError, onnx_path, verify_files
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


PRECISIONS = ("auto", "fp32", "int8")


def choose_precision(manifest, requested, providers, int8_dot):
    """(precision "fp32" | "int8", why) for ``requested`` (one of PRECISIONS). ``providers``: the
    execution providers in use, first preferred; ``int8_dot``: the CPU's int8 dot-product flag or None."""
    if requested not in PRECISIONS:
        raise BackendError("unknown ONNX Runtime precision %r; expected one of: %s"
                           % (requested, ", ".join(PRECISIONS)))
    entry = manifest.get("onnx_int8") or {}
    if requested == "fp32":
        return "fp32", "asked for"
    if requested == "int8":
        try:
            onnx_path(manifest, int8=True)
        except ManifestError as exc:
            raise BackendError("--ort-precision int8: %s; or use --ort-precision fp32" % exc)
        if not entry.get("verified"):
            LOG.warning("%s did not pass its parity check against FP32 (see manifest.json onnx_int8.parity); "
                        "using it because --ort-precision int8 asks for it", entry.get("file"))
        return "int8", "asked for"
    if not entry:
        return "fp32", "the bundle has no INT8 model (python -m convert int8 BUNDLE adds one)"
    if not entry.get("verified"):
        return "fp32", "the bundle's INT8 model did not pass its parity check"
    if not providers or providers[0] != "CPUExecutionProvider":
        return "fp32", "INT8 is for the CPU provider"
    if not int8_dot:
        return "fp32", "this CPU has no int8 dot-product instructions (VNNI, Arm dot product)"
    return "int8", "this CPU has %s" % int8_dot


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, manifest, providers="cpu", intra_op_threads=None, fp16=False, precision="auto", **_ignored):
        Backend.__init__(self, manifest)
        self.requested_providers = providers
        self.intra_op_threads = intra_op_threads
        self.fp16 = bool(fp16)
        self.requested_precision = precision or "auto"
        self.precision, self.precision_reason = ("fp16", "asked for") if self.fp16 else (None, None)
        self.session = None
        self.providers = []
        self.output_name = manifest["output"]["name"]

    def activate_impl(self):
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise BackendError(
                "onnxruntime is not installed (%s); pip install onnxruntime, or use --backend opencv" % exc)
        providers = resolve_providers(self.requested_providers, ort.get_available_providers())
        if not self.fp16:
            self.precision, self.precision_reason = choose_precision(
                self.manifest, self.requested_precision, providers, cpu_int8_dot())
        path = onnx_path(self.manifest, fp16=self.fp16, int8=self.precision == "int8")
        verify_files(self.manifest, names=[os.path.basename(path)])
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
        LOG.info("onnxruntime %s: %s (%s: %s) on %s", ort.__version__, os.path.basename(path), self.precision,
                 self.precision_reason, ", ".join(self.providers))

    def infer_impl(self, batch):
        return self.session.run([self.output_name], {self.input_name: batch})[0]

    def deactivate_impl(self):
        self.session = None

    def describe(self):
        info = Backend.describe(self)
        info.update({"providers": list(self.providers), "intra_op_threads": self.intra_op_threads,
                     "precision": self.precision, "precision_reason": self.precision_reason})
        return info
