"""Engine cache: which TensorRT plan fits this bundle on this device, and where it lives.

An engine is only valid for the exact ONNX, TensorRT version, GPU (name and compute
capability), precision and batch profile it was built with. Those facts form the cache
key; engines live next to the bundle::

    artifacts/cnn/engines/model.<key>.engine   # a plain TensorRT plan (trtexec --loadEngine works)
    artifacts/cnn/engines/model.<key>.json     # sidecar: the key facts + build time, L4T, workspace

GPU facts come from, in order: pycuda (``Device(0).name()/compute_capability()``, no
context needed), ``nvidia-smi --query-gpu=name,compute_cap`` (desktop GPUs; there is no
nvidia-smi on JetPack 4), and the Jetson device tree (``/proc/device-tree/compatible``:
tegra210 is the Nano's Maxwell GPU, compute 5.3). The first that answers wins and is
recorded in the sidecar as ``gpu.source``.

Stdlib + numpy only; tensorrt is imported lazily.
"""

import hashlib
import json
import logging
import os
import re
import subprocess

from . import manifest as mf
from .errors import UserError

log = logging.getLogger(__name__)

ENGINES_DIR = "engines"
DEFAULT_PROFILE = (1, 8, 64)
DEFAULT_PRECISION = "fp16"
PRECISIONS = ("fp16", "fp32")
SIDECAR_FORMAT = "nano-digits-engine/1"
KEY_FIELDS = ("onnx_sha256", "tensorrt", "gpu_name", "compute_capability", "precision", "profile")
NV_TEGRA_RELEASE = "/etc/nv_tegra_release"
DEVICE_TREE = "/proc/device-tree"

# Jetson SoCs (device-tree "compatible") -> GPU name, compute capability.
TEGRA_GPUS = {
    "nvidia,tegra210": ("NVIDIA Tegra X1", "5.3"),  # Jetson Nano, TX1
    "nvidia,tegra186": ("NVIDIA Tegra X2", "6.2"),  # TX2
    "nvidia,tegra194": ("Xavier", "7.2"),  # AGX Xavier, Xavier NX
    "nvidia,tegra234": ("Orin", "8.7"),  # Orin Nano / NX / AGX
}


# --------------------------------------------------------------------------
# Device facts
# --------------------------------------------------------------------------


def l4t_release(path=NV_TEGRA_RELEASE):
    """'R32.7.1' from '# R32 (release), REVISION: 7.1, ...'; None when not a Jetson."""
    try:
        with open(path, "r") as handle:
            first = handle.readline()
    except (IOError, OSError):
        return None
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", first)
    if not match:
        return None
    return "R%s.%s" % (match.group(1), match.group(2).rstrip("."))


def _gpu_from_pycuda():
    import pycuda.driver as cuda

    cuda.init()
    if cuda.Device.count() < 1:
        raise RuntimeError("pycuda sees no CUDA device")
    device = cuda.Device(0)
    return {"name": str(device.name()), "compute_capability": "%d.%d" % tuple(device.compute_capability()[:2])}


def _gpu_from_nvidia_smi(runner=subprocess.check_output):
    out = runner(["nvidia-smi", "--query-gpu=name,compute_cap", "--format=csv,noheader"],
                 stderr=subprocess.STDOUT, universal_newlines=True, timeout=10)
    first = out.strip().splitlines()[0]
    name, _, cc = first.partition(",")
    cc = cc.strip()
    if not re.match(r"^\d+\.\d+$", cc):
        raise RuntimeError("nvidia-smi gave no compute capability: %r" % first)
    return {"name": name.strip(), "compute_capability": cc}


def _gpu_from_device_tree(root=DEVICE_TREE):
    with open(os.path.join(root, "compatible"), "rb") as handle:
        compatible = [c.decode("ascii", "replace") for c in handle.read().split(b"\0") if c]
    for entry in compatible:
        if entry in TEGRA_GPUS:
            name, cc = TEGRA_GPUS[entry]
            return {"name": name, "compute_capability": cc}
    raise RuntimeError("unknown Jetson SoC %s" % ", ".join(compatible))


GPU_SOURCES = [("pycuda", _gpu_from_pycuda), ("nvidia-smi", _gpu_from_nvidia_smi),
               ("device-tree", _gpu_from_device_tree)]


def gpu_facts(sources=None):
    """{'name', 'compute_capability', 'source'} from the first source that answers; never raises.

    Without any answer: name/compute_capability None and 'error' listing what was tried.
    """
    errors = []
    for source, probe in (sources if sources is not None else GPU_SOURCES):
        try:
            facts = probe()
        except Exception as exc:
            errors.append("%s: %s" % (source, str(exc).strip() or type(exc).__name__))
            continue
        facts["source"] = source
        return facts
    return {"name": None, "compute_capability": None, "source": None, "error": "; ".join(errors) or "no GPU probe"}


# --------------------------------------------------------------------------
# Keys and sidecars
# --------------------------------------------------------------------------


def check_profile(profile):
    """(min, opt, max) ints with 1 <= min <= opt <= max; UserError otherwise."""
    try:
        low, opt, high = [int(v) for v in profile]
    except (TypeError, ValueError):
        raise UserError("batch profile must be three integers min,opt,max (e.g. 1,8,64), got %r" % (profile,))
    if not 1 <= low <= opt <= high:
        raise UserError("batch profile needs 1 <= min <= opt <= max, got min=%d opt=%d max=%d" % (low, opt, high))
    return (low, opt, high)


def onnx_choice(manifest, precision, strongly_typed_only):
    """(file name, sha256) of the ONNX to build from: the FP16 export on TensorRT 11+ FP16 builds."""
    if precision == "fp16" and strongly_typed_only:
        entry = manifest.get("onnx_fp16") or {}
        if not entry.get("file"):
            raise UserError(
                "TensorRT 11+ builds FP16 engines only from an FP16 ONNX (strongly typed network), but bundle %s "
                "has no onnx_fp16 entry; re-export with `make export`, or build FP32 with --precision fp32"
                % mf.bundle_dir(manifest))
        name = entry["file"]
    else:
        entry = manifest["onnx"]
        name = entry["file"]
    digest = entry.get("sha256") or (manifest.get("files") or {}).get(name)
    if not digest:
        path = mf.file_path(manifest, name)
        if not os.path.exists(path):
            raise UserError("bundle file %s is missing; copy the whole bundle again (make deploy)" % path)
        digest = mf.sha256_file(path)
    return name, digest


def key_facts(onnx_sha256, tensorrt, gpu, precision, profile):
    """The facts an engine must match, as a flat dict (what the key hashes)."""
    return {
        "onnx_sha256": onnx_sha256,
        "tensorrt": str(tensorrt),
        "gpu_name": gpu.get("name"),
        "compute_capability": gpu.get("compute_capability"),
        "precision": precision,
        "profile": list(check_profile(profile)),
    }


def cache_key(facts):
    """16 hex digits of sha256 over the canonical JSON of the key facts."""
    canonical = json.dumps({k: facts[k] for k in KEY_FIELDS}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def engines_dir(manifest):
    return os.path.join(mf.bundle_dir(manifest), ENGINES_DIR)


def engine_path_for(manifest, facts):
    return os.path.join(engines_dir(manifest), "model.%s.engine" % cache_key(facts))


def sidecar_path(engine_path):
    base, ext = os.path.splitext(str(engine_path))
    return (base if ext in (".engine", ".plan", ".trt") else str(engine_path)) + ".json"


def read_sidecar(engine_path):
    """The sidecar dict, or None when missing or unreadable."""
    path = sidecar_path(engine_path)
    try:
        with open(path, "r") as handle:
            data = json.load(handle)
    except (IOError, OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def sidecar_facts(sidecar):
    """The key facts recorded in a sidecar (same shape as key_facts)."""
    gpu = sidecar.get("gpu") or {}
    profile = sidecar.get("profile") or {}
    return {
        "onnx_sha256": (sidecar.get("onnx") or {}).get("sha256"),
        "tensorrt": sidecar.get("tensorrt"),
        "gpu_name": gpu.get("name"),
        "compute_capability": gpu.get("compute_capability"),
        "precision": sidecar.get("precision"),
        "profile": [profile.get("min"), profile.get("opt"), profile.get("max")],
    }


def make_sidecar(facts, onnx_file, engine_path, gpu, build_seconds, workspace_mib, input_name, fp16_kernels,
                 l4t=None, created_by=None):
    return {
        "format": SIDECAR_FORMAT,
        "key": cache_key(facts),
        "engine_file": os.path.basename(str(engine_path)),
        "tensorrt": facts["tensorrt"],
        "gpu": {"name": gpu.get("name"), "compute_capability": gpu.get("compute_capability"),
                "source": gpu.get("source")},
        "precision": facts["precision"],
        "fp16_kernels": bool(fp16_kernels),
        "profile": {"input": input_name, "min": facts["profile"][0], "opt": facts["profile"][1],
                    "max": facts["profile"][2]},
        "onnx": {"file": onnx_file, "sha256": facts["onnx_sha256"]},
        "build_seconds": round(float(build_seconds), 3),
        "workspace_mib": int(workspace_mib),
        "l4t": l4t,
        "created_by": created_by or {},
    }


_FIELD_WORDS = {"onnx_sha256": "ONNX sha256", "tensorrt": "TensorRT", "gpu_name": "GPU",
                "compute_capability": "compute capability", "precision": "precision", "profile": "batch profile"}


def mismatches(recorded, wanted, ignore=()):
    """[(field, recorded value, wanted value)] for each key fact that differs."""
    out = []
    for field in KEY_FIELDS:
        if field in ignore:
            continue
        if recorded.get(field) != wanted.get(field):
            out.append((field, recorded.get(field), wanted.get(field)))
    return out


def _show(field, value):
    if value is None:
        return "unknown"
    if field == "onnx_sha256":
        return str(value)[:12] + "..."
    if field == "profile":
        return "min/opt/max %s" % "/".join(str(v) for v in value)
    return str(value)


def explain_mismatch(differences):
    """'TensorRT: engine 8.0.1, now 8.2.1; GPU: engine Xavier, now NVIDIA Tegra X1'."""
    return "; ".join("%s: engine built with %s, now %s" % (_FIELD_WORDS[f], _show(f, was), _show(f, now))
                     for f, was, now in differences)


def rebuild_command(manifest):
    return "python3 -m edge_runtime build-engine --model %s" % mf.bundle_dir(manifest)


# --------------------------------------------------------------------------
# Shared CLI options for subcommands that open the TensorRT backend (run, bench)
# --------------------------------------------------------------------------


def add_engine_args(parser):
    """--engine FILE / --no-build, as an argument group; pass engine_options(args) to open_backend."""
    group = parser.add_argument_group("TensorRT engine")
    group.add_argument("--engine", default=None, metavar="FILE",
                       help="TensorRT engine to use, checked against its .json sidecar (default: the matching "
                            "engine in <model>/engines/, built if missing)")
    group.add_argument("--no-build", action="store_true",
                       help="fail instead of building a missing TensorRT engine (default: build it)")
    return group


def engine_options(args):
    """{"engine", "build"} for TensorRTBackend (other backends ignore them)."""
    return {"engine": getattr(args, "engine", None), "build": not getattr(args, "no_build", False)}


# --------------------------------------------------------------------------
# Lookup
# --------------------------------------------------------------------------


def list_engines(manifest):
    folder = engines_dir(manifest)
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".engine"))


def find_engine(manifest, wanted, any_profile=False):
    """Path of a cached engine whose sidecar matches ``wanted`` (key facts); None if none does.

    With ``any_profile`` an engine with another batch profile also fits (the exact key is preferred,
    then the largest max batch).
    """
    exact = engine_path_for(manifest, wanted)
    sidecar = read_sidecar(exact)
    if os.path.exists(exact) and sidecar is not None and not mismatches(sidecar_facts(sidecar), wanted):
        return exact
    if not any_profile:
        return None
    fitting = []
    for path in list_engines(manifest):
        sidecar = read_sidecar(path)
        if sidecar is not None and not mismatches(sidecar_facts(sidecar), wanted, ignore=("profile",)):
            fitting.append((-int(sidecar_facts(sidecar)["profile"][2] or 0), path))
    return min(fitting)[1] if fitting else None


def check_user_engine(engine_path, wanted, manifest):
    """Raise UserError unless the user-given engine's sidecar matches; return the sidecar."""
    if not os.path.isfile(engine_path):
        raise UserError("engine file %s does not exist; build one with: %s" % (engine_path, rebuild_command(manifest)))
    sidecar = read_sidecar(engine_path)
    if sidecar is None:
        raise UserError(
            "engine %s has no readable sidecar %s, so it cannot be checked against this device "
            "(TensorRT %s, GPU %s); rebuild: %s" % (engine_path, sidecar_path(engine_path), wanted["tensorrt"],
                                                    wanted["gpu_name"] or "unknown", rebuild_command(manifest)))
    differences = mismatches(sidecar_facts(sidecar), wanted, ignore=("profile",))
    if differences:
        raise UserError("engine %s does not fit: %s; rebuild: %s"
                        % (engine_path, explain_mismatch(differences), rebuild_command(manifest)))
    return sidecar


def current_facts(manifest, api, precision=DEFAULT_PRECISION, profile=DEFAULT_PROFILE, gpu=None):
    """(key facts for this device, onnx file name, gpu dict)."""
    gpu = gpu if gpu is not None else gpu_facts()
    onnx_file, digest = onnx_choice(manifest, precision, api.strongly_typed_only)
    return key_facts(digest, api.version_string, gpu, precision, profile), onnx_file, gpu


def resolve_engine(manifest, api, engine=None, build=True, precision=DEFAULT_PRECISION, profile=None,
                   workspace_mib=256, gpu=None, builder=None, say=None):
    """Path of an engine for this bundle on this device: user-given, cached, or freshly built.

    ``profile`` None means any cached profile will do (building uses the default 1/8/64).
    ``builder`` (default engine_from_onnx.build_for_bundle) is injectable for tests.
    """
    say = say or log.info
    wanted, _, gpu = current_facts(manifest, api, precision, profile or DEFAULT_PROFILE, gpu)
    if engine:
        check_user_engine(engine, wanted, manifest)
        return engine
    found = find_engine(manifest, wanted, any_profile=profile is None)
    if found:
        log.info("using cached engine %s", found)
        return found
    if not build:
        known = describe_cache(manifest, api=api, gpu=gpu, precision=precision)
        detail = "; ".join("%s (%s)" % (os.path.basename(e["engine"]), ", ".join(e["reasons"]) or "other profile")
                           for e in known) or "no engines in %s" % engines_dir(manifest)
        raise UserError("no engine for this device (TensorRT %s, GPU %s, %s) and --no-build was given: %s. "
                        "Build one: %s" % (wanted["tensorrt"], wanted["gpu_name"] or "unknown", precision,
                                           detail, rebuild_command(manifest)))
    if builder is None:
        from .engine_from_onnx import build_for_bundle as builder
    stale = [e for e in describe_cache(manifest, api=api, gpu=gpu, precision=precision) if e["reason"]]
    why = "cached %s does not fit (%s)" % (stale[0]["file"], stale[0]["reason"]) if stale else \
        "no TensorRT engine for this bundle on this device yet"
    say("%s; building one (run `%s` to do this ahead of time)" % (why, rebuild_command(manifest)))
    path, _ = builder(manifest, api=api, precision=precision, profile=profile or DEFAULT_PROFILE,
                      workspace_mib=workspace_mib, gpu=gpu)
    return path


def describe_cache(manifest, api=None, gpu=None, precision=DEFAULT_PRECISION):
    """For `info`: every engine next to the bundle and whether it matches this device. Never raises.

    Each item: {"engine", "file", "sidecar": bool, "matches": True/False/None (unknown: no TensorRT here),
    "reasons": [...], "reason" (the same, joined), "tensorrt", "gpu", "precision", "profile", "max_batch"}.
    """
    try:
        paths = list_engines(manifest)
    except Exception as exc:  # pragma: no cover - a manifest without a folder
        return [{"engine": None, "sidecar": False, "matches": None, "reasons": [str(exc)]}]
    wanted = None
    why_unknown = None
    if paths:
        try:
            if api is None:
                from .backends.trt_compat import TrtApi, import_tensorrt

                api = TrtApi(import_tensorrt())
            wanted, _, _ = current_facts(manifest, api, precision, DEFAULT_PROFILE, gpu)
        except Exception as exc:
            why_unknown = str(exc).split(". ")[0]
    out = []
    for path in paths:
        sidecar = read_sidecar(path)
        item = {"engine": path, "file": os.path.basename(path), "sidecar": sidecar is not None, "matches": None,
                "reasons": [], "tensorrt": None, "gpu": None, "precision": None, "profile": None, "max_batch": None}
        out.append(item)
        if sidecar is None:
            item["matches"] = False
            item["reasons"].append("no sidecar %s" % os.path.basename(sidecar_path(path)))
            item["reason"] = item["reasons"][0]
            continue
        facts = sidecar_facts(sidecar)
        item.update(tensorrt=facts["tensorrt"], gpu=facts["gpu_name"], precision=facts["precision"],
                    profile=facts["profile"], max_batch=facts["profile"][2])
        if wanted is None:
            item["reasons"].append("cannot check here: %s" % why_unknown)
        else:
            differences = mismatches(facts, wanted, ignore=("profile",))
            item["matches"] = not differences
            item["reasons"] = [explain_mismatch([d]) for d in differences]
        item["reason"] = "; ".join(item["reasons"])
    return out
