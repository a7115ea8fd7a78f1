"""`python3 -m edge_runtime info`: what this machine can run, in one screen (or `--json`).

Python, numpy, OpenCV (+ GStreamer), the backends available here and the install hint for
each missing one, TensorRT and pycuda (via backends.trt_compat.describe() when present),
Jetson model, L4T release, power mode and clocks; with ``--model`` also the engines in the
bundle's cache and whether each matches this device. Never crashes on a plain desktop:
every optional part is guarded and reported as missing.
"""

import importlib
import json
import logging
import sys

from . import __version__
from . import environment as envmod

LOG = logging.getLogger(__name__)

EPILOG = """examples:
  python3 -m edge_runtime info
  python3 -m edge_runtime info --json > info.json
  python3 -m edge_runtime info --model artifacts/cnn     # also the TensorRT engines in the cache
"""


def add_arguments(parser):
    parser.add_argument("--model", default=None, metavar="DIR",
                        help="bundle folder (e.g. artifacts/cnn): also list its cached engines (default: none)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def backend_facts():
    """[{name, available, missing, install}] from the backend registry (no heavy backend import)."""
    from .backends import BACKENDS, missing_modules

    rows = []
    for name, _, _, _, hint in BACKENDS:
        try:
            missing = missing_modules(name)
        except Exception as exc:
            missing = ["? (%s)" % exc]
        rows.append({"name": name, "available": not missing, "missing": missing,
                     "install": hint if missing else None})
    return rows


def _optional_call(module_name, function_name, *args):
    """(result, error string): call edge_runtime.<module>.<function>(*args) if it exists."""
    try:
        module = importlib.import_module("." + module_name, __package__)
    except ImportError as exc:
        return None, "not available here (%s)" % exc
    except Exception as exc:
        return None, "%s: %s" % (type(exc).__name__, exc)
    function = getattr(module, function_name, None)
    if function is None:
        return None, "%s.%s() is not provided by this version" % (module_name, function_name)
    try:
        return function(*args), None
    except Exception as exc:
        return None, "%s: %s" % (type(exc).__name__, exc)


def tensorrt_facts():
    result, error = _optional_call("backends.trt_compat", "describe")
    return {"describe": result, "error": error}


def engine_cache_facts(model):
    from . import manifest as mf

    try:
        manifest = mf.load(model, check_files=False)
    except Exception as exc:
        return {"model": model, "engines": None, "error": str(exc), "bad_model": True}
    result, error = _optional_call("engine_cache", "describe_cache", manifest)
    if result is None and error and "not available here" in error:
        result, error = _optional_call("backends.engine_cache", "describe_cache", manifest)
    return {"model": manifest.get("_dir"), "engines": result, "error": error}


def collect_info(model=None):
    info = {"edge_runtime": __version__, "environment": envmod.collect_environment()}
    info["backends"] = backend_facts()
    info["tensorrt"] = tensorrt_facts()
    if model:
        info["engine_cache"] = engine_cache_facts(model)
    return info


def _value(value):
    if value is None:
        return "not found"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def text_lines(info):
    env = info["environment"]
    libs = env.get("libraries") or {}
    cv = libs.get("opencv") or {}
    ort = libs.get("onnxruntime") or {}
    cpu = env.get("cpu") or {}
    py = env.get("python") or {}
    lines = [
        "edge_runtime %s" % info["edge_runtime"],
        "host:         %s (%s, %s cores, %s)" % (env.get("host"), _value(cpu.get("model")), _value(cpu.get("cores")),
                                                 _value((env.get("os") or {}).get("name"))),
        "python:       %s (%s)" % (_value(py.get("version")), _value(py.get("executable"))),
        "numpy:        %s" % _value(libs.get("numpy")),
        "opencv:       %s (GStreamer: %s, CUDA: %s)" % (_value(cv.get("version")), _value(cv.get("gstreamer")),
                                                       _value(cv.get("cuda"))),
        "onnxruntime:  %s%s" % (_value(ort.get("version")),
                                " (providers: %s)" % ", ".join(ort["providers"]) if ort.get("providers") else ""),
        "cpu int8:     %s" % ("%s (ONNX Runtime runs a bundle's INT8 model: --ort-precision auto)" % cpu["int8_dot"]
                              if cpu.get("int8_dot") else "no int8 dot products (ONNX Runtime runs FP32)"),
        "tensorrt:     %s" % _value(libs.get("tensorrt")),
        "pycuda:       %s" % _value(libs.get("pycuda")),
        "backends:",
    ]
    for row in info["backends"]:
        if row["available"]:
            lines.append("  %-12s available" % row["name"])
        else:
            lines.append("  %-12s missing %s -> %s" % (row["name"], ", ".join(row["missing"]), row["install"]))
    trt = info.get("tensorrt") or {}
    if (trt.get("describe") or {}).get("tensorrt"):
        lines.append("tensorrt details:")
        for key, value in sorted(trt["describe"].items()):
            lines.append("  %-22s %s" % (key + ":", value))
    jetson = env.get("jetson")
    if jetson:
        mode = jetson.get("power_mode") or {}
        clocks = jetson.get("clocks") or {}
        lines += [
            "jetson:       %s" % _value(jetson.get("model")),
            "L4T:          %s" % _value(jetson.get("l4t")),
            "power mode:   %s" % ("%s (id %s)" % (mode.get("name"), mode.get("id")) if mode else
                                  "unknown (nvpmodel -q did not answer)"),
            "clocks:       %s" % ("pinned" if clocks.get("pinned") else "not pinned (sudo jetson_clocks pins them)"
                                  if clocks else "unknown"),
        ]
    else:
        lines.append("jetson:       not a Jetson (no /proc/device-tree/model or /etc/nv_tegra_release)")
    if env.get("temperature_c"):
        lines.append("temperature:  " + ", ".join("%s %.1f C" % kv for kv in sorted(env["temperature_c"].items())))
    cache = info.get("engine_cache")
    if cache is not None:
        lines.append("engine cache for %s:" % cache.get("model"))
        if cache.get("error"):
            lines.append("  %s" % cache["error"])
        elif not cache.get("engines"):
            lines.append("  no engines yet (build one on the device: python3 -m edge_runtime build-engine --model ...)")
        else:
            for engine in cache["engines"]:
                lines.append("  " + _engine_line(engine))
    return lines


def _engine_line(engine):
    if not isinstance(engine, dict):
        return str(engine)
    name = engine.get("file") or engine.get("path") or engine.get("name") or "?"
    matches = engine.get("matches", engine.get("compatible"))
    why = engine.get("reason") or "; ".join(engine.get("reasons") or []) or ""
    if matches:
        verdict = "matches this device"
    elif matches is False:
        verdict = "does not match: %s" % why
    else:
        verdict = "match unknown%s" % (" (%s)" % why if why else "")
    details = ", ".join("%s=%s" % (k, engine[k]) for k in ("tensorrt", "gpu", "precision", "max_batch")
                        if engine.get(k) is not None)
    return "%s: %s%s" % (name, verdict, (" (%s)" % details) if details else "")


def run(args):
    info = collect_info(model=args.model)
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2, sort_keys=False, default=str) + "\n")
    else:
        sys.stdout.write("\n".join(text_lines(info)) + "\n")
    cache = info.get("engine_cache") or {}
    if cache.get("bad_model"):
        sys.stderr.write("edge_runtime info: error: --model %s: %s\n" % (args.model, cache["error"]))
        return 2
    return 0
