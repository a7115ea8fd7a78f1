"""`python3 -m edge_runtime verify-jetson`: the one place the TensorRT path runs for real.

On a Jetson (or any NVIDIA machine with TensorRT + pycuda) this:

1. builds or loads the bundle's engine (the same cache `run` uses);
2. runs the 10k test digits of the bundle's reference.npz through it and compares with the ONNX Runtime
   probabilities saved there on the workstation: top-1 agreement, accuracy, max |p - p_onnx|;
3. benchmarks latency per batch size (p50/p99; h2d/compute/d2h from CUDA events);
4. runs the `jetson`-marked pytest tests when pytest and the tests are on the device;
5. writes jetson-report.md + jetson-report.json (device, L4T, TensorRT, power mode, clocks, results,
   pass/fail against the targets) to paste into an issue; exits 1 when a target fails.

The comparison, benchmark and report code take the backend as an argument, so the whole flow is
tested on CPU with ONNX Runtime standing in (``--backend onnxruntime`` is that dry run: it proves the
plumbing, not TensorRT).
"""

import json
import logging
import os
import subprocess
import sys
import time

import numpy as np

from . import __version__
from . import manifest as mf
from .errors import UserError

log = logging.getLogger(__name__)

MIN_AGREEMENT_PCT = 99.95
MAX_ACCURACY_DROP_POINTS = 0.1
DEFAULT_BATCHES = (1, 8, 64)
REPORT_NAME = "jetson-report"
JETSON_TESTS = os.path.join("tests", "edge_runtime", "test_tensorrt_jetson.py")

EPILOG = """examples:
  python3 -m edge_runtime verify-jetson --model artifacts/cnn
  python3 -m edge_runtime verify-jetson --model artifacts/cnn --no-build --engine my.engine
  python3 -m edge_runtime verify-jetson --model artifacts/cnn --backend onnxruntime --no-pytest   # dry run on CPU

Targets: top-1 agreement with ONNX Runtime >= 99.95 %, accuracy drop <= 0.1 points.
Exit status: 0 all targets met, 1 a target or a jetson test failed, 2 bad input.
"""


def _say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------
# Reference data and comparison
# --------------------------------------------------------------------------


def load_reference(manifest):
    """(images uint8 [N,28,28], labels int64 [N], onnx_probabilities float32 [N,C]) from the bundle."""
    entry = manifest.get("reference") or {}
    if not entry.get("file"):
        raise UserError("bundle %s has no reference.npz (manifest has no 'reference'); re-export it on the "
                        "workstation with `make export` and copy it again (`make deploy`)" % mf.bundle_dir(manifest))
    path = mf.file_path(manifest, entry["file"])
    if not os.path.exists(path):
        raise UserError("%s is missing; copy the whole bundle again (`make deploy`)" % path)
    mf.verify_files(manifest, names=[entry["file"]])
    with np.load(path) as data:
        missing = [k for k in ("images", "labels", "onnx_probabilities") if k not in data.files]
        if missing:
            raise UserError("%s lacks %s; re-export the bundle with `make export`" % (path, ", ".join(missing)))
        images, labels, probs = data["images"], data["labels"], data["onnx_probabilities"]
    classes = int(manifest["output"]["shape"][-1])
    if not (len(images) == len(labels) == len(probs)) or probs.ndim != 2 or probs.shape[1] != classes:
        raise UserError("%s is inconsistent: %d images, %d labels, probabilities %s (expected [N, %d]); "
                        "re-export with `make export`" % (path, len(images), len(labels), list(probs.shape), classes))
    return images, labels.astype(np.int64), probs.astype(np.float32)


def model_input(manifest, images):
    """uint8 [N,H,W] -> float32 model input in the manifest's layout and scale."""
    scale = float(manifest["preprocess"]["scale"])
    x = images.astype(np.float32) * np.float32(scale)
    if manifest["input"]["layout"] == "NHWC":
        return x[..., None]
    return x[:, None]


def infer_all(net, x, chunk):
    out = []
    for start in range(0, len(x), chunk):
        out.append(net.infer(np.ascontiguousarray(x[start:start + chunk])))
    return np.concatenate(out, axis=0) if out else np.zeros((0, net.num_classes), np.float32)


def compare(probs, onnx_probs, labels):
    """Engine vs ONNX Runtime on the same digits, in plain floats (percent and points)."""
    top1, ref_top1 = probs.argmax(axis=1), onnx_probs.argmax(axis=1)
    accuracy = 100.0 * float((top1 == labels).mean())
    onnx_accuracy = 100.0 * float((ref_top1 == labels).mean())
    diff = np.abs(probs.astype(np.float64) - onnx_probs.astype(np.float64))
    return {
        "count": int(len(labels)),
        "top1_agreement_pct": 100.0 * float((top1 == ref_top1).mean()),
        "disagreements": int((top1 != ref_top1).sum()),
        "accuracy_pct": accuracy,
        "onnx_accuracy_pct": onnx_accuracy,
        "accuracy_drop_points": onnx_accuracy - accuracy,
        "max_abs_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_diff": float(diff.mean()) if diff.size else 0.0,
    }


def judge(comparison, min_agreement=MIN_AGREEMENT_PCT, max_drop=MAX_ACCURACY_DROP_POINTS):
    """[{"check", "value", "target", "passed"}] for the parity targets."""
    return [
        {"check": "top-1 agreement with ONNX Runtime (%)", "value": round(comparison["top1_agreement_pct"], 4),
         "target": ">= %g" % min_agreement, "passed": comparison["top1_agreement_pct"] >= min_agreement},
        {"check": "accuracy drop vs ONNX Runtime (points)", "value": round(comparison["accuracy_drop_points"], 4),
         "target": "<= %g" % max_drop, "passed": comparison["accuracy_drop_points"] <= max_drop + 1e-9},
    ]


# --------------------------------------------------------------------------
# Benchmark
# --------------------------------------------------------------------------


def percentile(values, q):
    return float(np.percentile(np.asarray(values, np.float64), q)) if len(values) else None


def benchmark(net, x, batches=DEFAULT_BATCHES, iterations=100, warmup=10):
    """Latency per batch size: wall-clock ms around infer(); stage ms from infer_timed() when available."""
    rows = []
    timed = getattr(net, "infer_timed", None)
    for batch in batches:
        if batch > net.max_batch or batch > len(x):
            rows.append({"batch": batch, "skipped": "larger than the backend's max batch %d" % net.max_batch})
            continue
        data = np.ascontiguousarray(x[:batch])
        for _ in range(warmup):
            net.infer(data)
        wall = []
        stages = {}
        for _ in range(iterations):
            started = time.perf_counter()
            if timed is not None:
                _, times = timed(data)
                for name in ("h2d", "compute", "d2h", "end_to_end"):
                    stages.setdefault(name, []).append(times[name])
            else:
                net.infer(data)
            wall.append((time.perf_counter() - started) * 1000.0)
        p50 = percentile(wall, 50)
        row = {"batch": batch, "iterations": iterations, "p50_ms": p50, "p99_ms": percentile(wall, 99),
               "mean_ms": float(np.mean(wall)), "images_per_s": 1000.0 * batch / p50 if p50 else None}
        for name, values in sorted(stages.items()):
            row[name + "_p50_ms"] = percentile(values, 50)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------
# The jetson pytest tests
# --------------------------------------------------------------------------


def project_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_jetson_tests(root=None, python=None, timeout=900, popen=subprocess.Popen, model=None):
    """Run the `jetson`-marked tests if pytest and the test file are here: {"status", "rc", "summary"}.

    ``model`` (the bundle under test) reaches the tests as NANO_DIGITS_MODEL, for devices without `onnx`.
    """
    root = root or project_root()
    if not os.path.exists(os.path.join(root, JETSON_TESTS)):
        return {"status": "not run", "rc": None, "summary": "%s is not on this machine" % JETSON_TESTS}
    try:
        import pytest  # noqa: F401
    except ImportError:
        return {"status": "not run", "rc": None, "summary": "pytest is not installed (pip3 install pytest)"}
    argv = [python or sys.executable, "-m", "pytest", "-m", "jetson", "-q", "-p", "no:cacheprovider", JETSON_TESTS]
    env = dict(os.environ)
    if model:
        env["NANO_DIGITS_MODEL"] = os.path.abspath(model)
    proc = popen(argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                 universal_newlines=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return {"status": "failed", "rc": None, "summary": "timed out after %d s" % timeout}
    lines = [line for line in (out or "").strip().splitlines() if line.strip()]
    summary = lines[-1].strip("= ") if lines else ""
    if proc.returncode in (0, 5):  # 5: nothing collected (a module-level skip, or no tests)
        status = "passed" if " passed" in summary else ("skipped" if "skipped" in summary else "not run")
    else:
        status = "failed"
    return {"status": status, "rc": proc.returncode, "summary": summary, "command": " ".join(argv)}


# --------------------------------------------------------------------------
# Environment and report
# --------------------------------------------------------------------------


def environment_block():
    """Device facts (never raises): environment.collect_environment() plus TensorRT details."""
    env = {}
    try:
        from . import environment

        env = environment.collect_environment()
    except Exception as exc:  # pragma: no cover - collect_environment never raises itself
        env = {"error": str(exc)}
    try:
        from .backends import trt_compat

        env["tensorrt_details"] = trt_compat.describe()
    except Exception as exc:  # pragma: no cover - describe never raises itself
        env["tensorrt_details"] = {"errors": [str(exc)]}
    return env


def _fmt(value, digits=3):
    if value is None:
        return "-"
    if isinstance(value, float):
        return ("%." + str(digits) + "f") % value
    return str(value)


def render_markdown(report):
    env = report.get("environment") or {}
    jetson = env.get("jetson") or {}
    trt = env.get("tensorrt_details") or {}
    mode = jetson.get("power_mode") or {}
    clocks = jetson.get("clocks") or {}
    backend = report["backend"]
    lines = [
        "## verify-jetson: %s (%s)" % ("PASS" if report["passed"] else "FAIL", report["bundle"]["name"]),
        "",
        "| | |",
        "|---|---|",
        "| device | %s |" % (jetson.get("model") or (env.get("host") or "not a Jetson")),
        "| L4T | %s |" % _fmt(jetson.get("l4t")),
        "| power mode (nvpmodel -q) | %s |" % (" ".join(str(v) for v in (mode.get("name"), mode.get("id"))
                                                        if v is not None) or "-"),
        "| clocks | %s |" % (json.dumps(clocks, sort_keys=True) if clocks else "-"),
        "| TensorRT / pycuda | %s / %s |" % (_fmt(trt.get("tensorrt") or backend.get("tensorrt")),
                                             _fmt(trt.get("pycuda"))),
        "| GPU | %s (compute %s) |" % (_fmt(trt.get("gpu")), _fmt(trt.get("compute_capability"))),
        "| backend | %s%s |" % (backend.get("backend"), "" if backend.get("backend") == "tensorrt"
                                 else " (dry run: NOT a TensorRT verification)"),
        "| engine | %s |" % _fmt(backend.get("engine")),
        "| precision / max batch | %s / %s |" % (_fmt(backend.get("precision")), _fmt(backend.get("max_batch"))),
        "| edge_runtime | %s |" % report["edge_runtime"],
        "",
        "### Parity with ONNX Runtime on %d test digits" % report["comparison"]["count"],
        "",
        "| check | value | target | result |",
        "|---|---|---|---|",
    ]
    for check in report["checks"]:
        lines.append("| %s | %s | %s | %s |" % (check["check"], _fmt(check["value"], 4), check["target"],
                                                "pass" if check["passed"] else "**FAIL**"))
    comp = report["comparison"]
    lines += [
        "",
        "accuracy %.2f %% (ONNX Runtime %.2f %%), %d disagreements, max |p - p_onnx| %.2e, mean %.2e" % (
            comp["accuracy_pct"], comp["onnx_accuracy_pct"], comp["disagreements"], comp["max_abs_diff"],
            comp["mean_abs_diff"]),
        "",
        "### Latency per batch",
        "",
        "| batch | p50 ms | p99 ms | mean ms | images/s | h2d p50 | compute p50 | d2h p50 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["benchmark"]:
        if row.get("skipped"):
            lines.append("| %d | skipped: %s | | | | | | |" % (row["batch"], row["skipped"]))
            continue
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s |" % (
            row["batch"], _fmt(row["p50_ms"]), _fmt(row["p99_ms"]), _fmt(row["mean_ms"]),
            _fmt(row["images_per_s"], 0), _fmt(row.get("h2d_p50_ms")), _fmt(row.get("compute_p50_ms")),
            _fmt(row.get("d2h_p50_ms"))))
    tests = report["jetson_tests"]
    lines += ["", "### jetson tests", "", "%s: %s" % (tests["status"], tests.get("summary") or "-"), ""]
    return "\n".join(lines)


def write_report(report, out_dir):
    """jetson-report.json and jetson-report.md in ``out_dir``; returns both paths."""
    json_path = os.path.join(out_dir, REPORT_NAME + ".json")
    md_path = os.path.join(out_dir, REPORT_NAME + ".md")
    mf.atomic_write_json(json_path, report)
    mf.atomic_write_text(md_path, render_markdown(report))
    return json_path, md_path


# --------------------------------------------------------------------------
# The flow
# --------------------------------------------------------------------------


def verify(manifest, net, batches=DEFAULT_BATCHES, iterations=100, warmup=10, jetson_tests=None,
           min_agreement=MIN_AGREEMENT_PCT, max_drop=MAX_ACCURACY_DROP_POINTS, environment=None, limit=None):
    """Run parity + benchmark with an *active* backend ``net``; return the report dict.

    ``jetson_tests`` is the result dict of run_jetson_tests (None: not run).
    """
    images, labels, onnx_probs = load_reference(manifest)
    if limit:
        images, labels, onnx_probs = images[:limit], labels[:limit], onnx_probs[:limit]
    x = model_input(manifest, images)
    chunk = max(1, min(64, net.max_batch))
    started = time.time()
    probs = infer_all(net, x, chunk)
    comparison = compare(probs, onnx_probs, labels)
    comparison["seconds"] = round(time.time() - started, 3)
    checks = judge(comparison, min_agreement, max_drop)
    tests = jetson_tests or {"status": "not run", "rc": None, "summary": "--no-pytest"}
    if tests["status"] == "failed":
        checks.append({"check": "jetson pytest tests", "value": tests.get("summary"), "target": "pass",
                       "passed": False})
    describe = net.describe()
    if describe.get("engine"):
        from .engine_cache import read_sidecar

        describe["sidecar"] = read_sidecar(describe["engine"])
    return {
        "passed": all(c["passed"] for c in checks),
        "checks": checks,
        "comparison": comparison,
        "benchmark": benchmark(net, x, batches, iterations, warmup),
        "jetson_tests": tests,
        "backend": describe,
        "bundle": {"name": manifest.get("name"), "folder": mf.bundle_dir(manifest),
                   "onnx_sha256": manifest["onnx"].get("sha256")},
        "environment": environment if environment is not None else environment_block(),
        "edge_runtime": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def add_arguments(parser):
    parser.add_argument("--model", default="artifacts/cnn", help="bundle folder (default: %(default)s)")
    parser.add_argument("--backend", default="tensorrt", choices=("tensorrt", "onnxruntime"),
                        help="backend under test; onnxruntime is a CPU dry run of this check (default: %(default)s)")
    parser.add_argument("--engine", default=None, help="use this engine file (checked against its sidecar) "
                        "instead of the cache (default: the cache)")
    parser.add_argument("--no-build", action="store_true", help="fail instead of building a missing engine")
    parser.add_argument("--batches", default=",".join(str(b) for b in DEFAULT_BATCHES),
                        help="benchmark batch sizes (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=100, help="timed runs per batch size (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs per batch size (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="compare only the first N digits (default: all)")
    parser.add_argument("--min-agreement", type=float, default=MIN_AGREEMENT_PCT,
                        help="target: top-1 agreement with ONNX Runtime in %% (default: %(default)s)")
    parser.add_argument("--max-drop", type=float, default=MAX_ACCURACY_DROP_POINTS,
                        help="target: accuracy drop in points (default: %(default)s)")
    parser.add_argument("--no-pytest", action="store_true", help="do not run the jetson-marked pytest tests")
    parser.add_argument("--out", default=".", help="folder for jetson-report.md/.json (default: %(default)s)")


def parse_batches(text):
    try:
        batches = tuple(int(b) for b in str(text).split(",") if b.strip())
    except ValueError:
        batches = ()
    if not batches or min(batches) < 1:
        raise UserError("--batches must be positive integers like 1,8,64, got %r" % text)
    return batches


def open_net(manifest, args):
    from .backends import create_backend

    if args.backend == "tensorrt":
        return create_backend(manifest, prefer="tensorrt", engine=args.engine, build=not args.no_build)
    return create_backend(manifest, prefer="onnxruntime", precision="fp32")  # (the reference's own model)


def run(args, open_backend=None):
    batches = parse_batches(args.batches)
    if args.iterations < 1 or args.warmup < 0:
        raise UserError("--iterations must be >= 1 and --warmup >= 0")
    manifest = mf.load(args.model)
    load_reference(manifest)  # fail early, before any GPU work
    if not os.path.isdir(args.out):
        raise UserError("--out %s is not a folder" % args.out)
    tests = None
    if not args.no_pytest:
        _say("running the jetson-marked tests (%s)..." % JETSON_TESTS)
        tests = run_jetson_tests(model=mf.bundle_dir(manifest))
    net = (open_backend or open_net)(manifest, args)
    with net:
        _say("comparing %s with ONNX Runtime on the reference digits..." % net.name)
        report = verify(manifest, net, batches=batches, iterations=args.iterations, warmup=args.warmup,
                        jetson_tests=tests, min_agreement=args.min_agreement, max_drop=args.max_drop,
                        limit=args.limit)
    json_path, md_path = write_report(report, args.out)
    comp = report["comparison"]
    _say("top-1 agreement %.3f %% (%d disagreements), accuracy %.2f %% vs %.2f %%, max |diff| %.2e" % (
        comp["top1_agreement_pct"], comp["disagreements"], comp["accuracy_pct"], comp["onnx_accuracy_pct"],
        comp["max_abs_diff"]))
    _say("%s: wrote %s and %s" % ("PASS" if report["passed"] else "FAIL", md_path, json_path))
    if not report["passed"]:
        failed = [c["check"] for c in report["checks"] if not c["passed"]]
        sys.stderr.write("edge_runtime verify-jetson: targets failed: %s (see %s)\n" % ("; ".join(failed), md_path))
        return 1
    return 0
