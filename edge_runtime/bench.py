"""`python3 -m edge_runtime bench`: backend latency per batch size, pipeline FPS, Keras baseline.

Three measurements, all written to ``--out`` with the environment block they ran in:

1. **model**: per backend and batch size, ``--warmup`` calls, then ``--iters`` calls (or
   ``--seconds`` of calls) on one fixed float32 batch; mean, std, min, p50/p90/p99 in ms and
   images/s (definitions in edge_runtime.stats). A backend with ``infer_timed`` (TensorRT)
   also reports the split measured with CUDA events, named as trtexec's ``--exportTimes``:
   h2d, compute, d2h, end_to_end.
2. **pipeline**: ``--frames`` frames are read from ``--source`` (synthetic:// by default)
   into memory first; then each goes through capture (taking it from memory), preprocess
   (edge_runtime.preprocess.digits_from_frame), infer (one batch per frame) and output
   (detections as one JSONL line). End-to-end FPS and per-stage medians. The same loop
   reading the source live is reported as ``pipeline.from_source``.
3. **baseline** (``--compare-keras``, workstation only): the same frames, saved to a
   temporary .npz, go through ``python -m train.keras_baseline`` in a subprocess (a Keras
   ``model.predict`` per frame, and a ``tf.function`` call per frame). edge_runtime never
   imports TensorFlow.

Outputs: bench.json, bench.csv (one row per timed model iteration), bench.md and the same
Markdown on stdout, bench.png (latency against batch per backend, and FPS), drawn with cv2.
"""

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time

from . import engine_cache, stats
from . import environment as envmod
from . import manifest as mf
from .cli_types import non_negative_int, positive_float, positive_int
from .errors import UserError

LOG = logging.getLogger(__name__)

DEFAULT_BATCHES = "1,8,32,64"
DEFAULT_ITERS = 200
DEFAULT_SOURCE = "synthetic://"
KERAS_TIMEOUT_S = 900
STAGES = ("capture", "preprocess", "infer", "output")
TRT_SPLIT = ("h2d", "compute", "d2h", "end_to_end")

EPILOG = """examples:
  python3 -m edge_runtime bench --model artifacts/cnn --out bench-out
  python3 -m edge_runtime bench --model artifacts/cnn --backend onnxruntime --batch 1,8 --seconds 5 --out bench-out
  python3 -m edge_runtime bench --model artifacts/cnn --compare-keras --out bench-out     # workstation only
  python3 -m edge_runtime bench --model artifacts/cnn --backend tensorrt --source csi://0 --frames 300 --out bench-out
  make bench BENCH_ARGS="--threads 1 --seconds 5"    # make bench adds --compare-keras where TensorFlow is

outputs in --out: bench.json (environment, model, pipeline, baseline), bench.csv (backend,batch,iter,ms),
bench.md (the Markdown tables also printed on stdout), bench.png (latency vs batch, FPS).
The environment block records power mode and clocks; bench never changes them
(on a Jetson run `sudo nvpmodel -m 0 && sudo jetson_clocks` yourself first if you want MAXN).
"""


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------


def batch_list(text):
    """'1,8,32,64' -> [1, 8, 32, 64] (sorted, unique, each >= 1)."""
    values = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        values.append(positive_int(part))
    if not values:
        raise argparse.ArgumentTypeError("expected batch sizes like 1,8,32,64, got %r" % text)
    return sorted(set(values))


def add_arguments(parser):
    from .backends import BACKEND_NAMES
    from .backends.onnxruntime import PRECISIONS as ORT_PRECISIONS

    parser.add_argument("--model", required=True, metavar="DIR", help="bundle folder, e.g. artifacts/cnn")
    parser.add_argument("--backend", default="all", choices=["all"] + BACKEND_NAMES,
                        help="backend(s) to benchmark; all = every backend available here (default: %(default)s)")
    parser.add_argument("--batch", type=batch_list, default=batch_list(DEFAULT_BATCHES), metavar="N,N,..",
                        help="batch sizes for the model benchmark (default: %s)" % DEFAULT_BATCHES)
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--iters", type=positive_int, default=None, metavar="N",
                        help="timed calls per backend and batch size (default: %d)" % DEFAULT_ITERS)
    amount.add_argument("--seconds", type=positive_float, default=None, metavar="T",
                        help="instead of --iters: time each backend and batch size for T seconds")
    parser.add_argument("--warmup", type=non_negative_int, default=20, metavar="N",
                        help="untimed calls before timing (default: %(default)s)")
    parser.add_argument("--threads", type=non_negative_int, default=0, metavar="N",
                        help="ONNX Runtime intra-op threads in the model benchmark (0 = its default; "
                             "default: %(default)s)")
    parser.add_argument("--pipeline-threads", type=non_negative_int, default=1, metavar="N",
                        help="ONNX Runtime intra-op threads in the pipeline benchmark, as `run --threads` "
                             "(0 = its default; default: %(default)s: detection needs the other core, and "
                             "ONNX Runtime's spinning workers would take it)")
    parser.add_argument("--source", default=DEFAULT_SOURCE, metavar="URI",
                        help="pipeline source: synthetic://, csi://0, /dev/video0, a video, images "
                             "(default: %(default)s)")
    parser.add_argument("--frames", type=positive_int, default=300, metavar="N",
                        help="frames read into memory for the pipeline benchmark; 300 frames of 640x480 take "
                             "about 280 MB (default: %(default)s)")
    parser.add_argument("--repeats", type=positive_int, default=3, metavar="R",
                        help="passes over the in-memory frames; the pipeline FPS reported is their median "
                             "(default: %(default)s)")
    parser.add_argument("--ort-precision", default="auto", choices=ORT_PRECISIONS,
                        help="ONNX Runtime model, as `run --ort-precision`; auto also times fp32 and int8 side by "
                             "side in the model benchmark where the bundle has a verified INT8 model "
                             "(default: %(default)s)")
    parser.add_argument("--pipeline-backend", default=None, choices=BACKEND_NAMES,
                        help="backend for the pipeline benchmark (default: the first benchmarked one, "
                             "in auto order tensorrt > onnxruntime > opencv)")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the pipeline benchmark")
    parser.add_argument("--serial-pipeline", action="store_true",
                        help="time the pipeline stages in one thread instead of pipeline.run_pipeline's threads")
    parser.add_argument("--compare-keras", action="store_true",
                        help="workstation only: also run the same frames through Keras (predict per frame "
                             "and tf.function) via `python -m train.keras_baseline`")
    parser.add_argument("--keras-model", default=None, metavar="FILE",
                        help="Keras model for --compare-keras (default: <model>/model.keras)")
    parser.add_argument("--keras-frames", type=positive_int, default=100, metavar="N",
                        help="how many of the frames the Keras baseline runs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the benchmark input batch (default: %(default)s)")
    parser.add_argument("--out", default="bench-out", metavar="DIR", help="output folder (default: %(default)s)")
    engine_cache.add_engine_args(parser)


# --------------------------------------------------------------------------
# Model benchmark
# --------------------------------------------------------------------------


def backends_to_run(choice):
    """Backend names for --backend; `all` = those importable here (may be empty -> UserError)."""
    from .backends import BACKENDS, available_backends

    if choice != "all":
        return [choice], []
    names = available_backends()
    skipped = [{"backend": row[0], "reason": "not installed (%s)" % row[4]} for row in BACKENDS if row[0] not in names]
    if not names:
        raise UserError("no inference backend is installed; install onnxruntime or opencv-python "
                        "(see `python3 -m edge_runtime info`)")
    return names, skipped


# --engine / --no-build of this bench run (set by run(); TensorRT only, other backends ignore them).
_engine_options = {}
# --ort-precision of this bench run (set by run(); ONNX Runtime only).
_ort_options = {}


def backend_options(name, threads):
    if name == "onnxruntime":  # 0 -> None: ONNX Runtime's choice (said explicitly: run_pipeline's default is 1)
        return dict(_ort_options, intra_op_threads=threads or None)
    if name == "tensorrt":
        return dict(_engine_options)
    return {}


def backend_variants(manifest, name, threads):
    """[(name, options)] to time in the model benchmark: ONNX Runtime at FP32 and at INT8 side by side
    where ``--ort-precision auto`` and the bundle has a verified INT8 model; else the one setting."""
    options = backend_options(name, threads)
    if name != "onnxruntime" or options.get("precision", "auto") != "auto":
        return [(name, options)]
    if not (manifest.get("onnx_int8") or {}).get("verified"):
        return [(name, options)]
    return [(name, dict(options, precision="fp32")), (name, dict(options, precision="int8"))]


def backend_label(net):
    """A row's name in the tables and the plot: the backend, "onnxruntime int8" for the INT8 model."""
    precision = net.describe().get("precision")
    return "%s %s" % (net.name, precision) if net.name == "onnxruntime" and precision == "int8" else net.name


def pipeline_precision(manifest, backend):
    """The ONNX Runtime precision the pipeline benchmark runs at (None for other backends)."""
    if backend != "onnxruntime":
        return None
    from .backends.onnxruntime import choose_precision
    from .environment import cpu_int8_dot

    return choose_precision(manifest, _ort_options.get("precision", "auto"), ["CPUExecutionProvider"],
                            cpu_int8_dot())[0]


def input_batch(manifest, batch, seed=0):
    import numpy as np

    shape = [batch] + [int(d) for d in manifest["input"]["shape"][1:]]
    return np.random.RandomState(seed).rand(*shape).astype(np.float32)


def check_batches_fit(net, batches):
    too_big = [b for b in batches if b > net.max_batch]
    if too_big:
        raise UserError(
            "--batch %s is larger than the %s backend's maximum batch of %d (the engine's optimisation "
            "profile); use --batch with sizes <= %d, or rebuild the engine with a larger profile "
            "(python3 -m edge_runtime build-engine --max-batch %d)"
            % (",".join(str(b) for b in too_big), net.name, net.max_batch, net.max_batch, max(too_big))
        )


def timed_calls(call, iters=None, seconds=None, warmup=0):
    """Run ``call()`` warmup times untimed, then iters times (or for `seconds`); return per-call ms."""
    for _ in range(warmup):
        call()
    times = []
    clock = time.perf_counter
    deadline = clock() + seconds if seconds else None
    while True:
        t0 = clock()
        call()
        times.append((clock() - t0) * 1000.0)
        if deadline is not None:
            if clock() >= deadline:
                break
        elif len(times) >= iters:
            break
    return times


def bench_backend_batch(net, manifest, batch, iters, seconds, warmup, seed=0):
    """One (backend, batch) cell -> (row dict, per-iteration ms list)."""
    x = input_batch(manifest, batch, seed)
    split = {key: [] for key in TRT_SPLIT}
    infer_timed = getattr(net, "infer_timed", None)
    if infer_timed is not None:
        def call():
            _, parts = infer_timed(x)
            for key in TRT_SPLIT:
                if parts and parts.get(key) is not None:
                    split[key].append(float(parts[key]))
    else:
        def call():
            net.infer(x)
    ms = timed_calls(call, iters=iters, seconds=seconds, warmup=warmup)
    if infer_timed is not None:  # drop the warm-up calls' split
        for key in TRT_SPLIT:
            split[key] = split[key][-len(ms):] if split[key] else []
    row = {"backend": net.name, "label": backend_label(net), "batch": int(batch)}
    row.update(stats.rounded(stats.latency_summary(ms, batch), 6))
    if any(split.values()):
        row["split_ms"] = {key: stats.rounded({"mean": float(sum(v) / len(v)), "p50": stats.median(v)})
                           for key, v in split.items() if v}
    return row, ms


def model_benchmarks(manifest, names, batches, iters, seconds, warmup, threads=0, strict=True, seed=0):
    """-> (rows, csv rows, skipped). `strict`: a backend that fails to open is an error (else skipped)."""
    from .backends import open_backend
    from .backends.base import BackendError

    rows, csv_rows, skipped = [], [], []
    for name, options in [variant for each in names for variant in backend_variants(manifest, each, threads)]:
        try:
            net = open_backend(manifest, prefer=name, **options)
            net.activate()
        except BackendError as exc:
            if strict:
                raise
            LOG.warning("skipping backend %s: %s", name, exc)
            skipped.append({"backend": name, "reason": str(exc)})
            continue
        try:
            check_batches_fit(net, batches)
            for batch in batches:
                row, ms = bench_backend_batch(net, manifest, batch, iters, seconds, warmup, seed)
                LOG.info("%s batch %d: p50 %.3f ms, %.0f images/s (%d iters)",
                         row["label"], batch, row["p50_ms"], row["images_per_s"], row["iters"])
                rows.append(row)
                csv_rows.extend((row["label"], batch, i, t) for i, t in enumerate(ms))
        finally:
            net.deactivate()
    return rows, csv_rows, skipped


# --------------------------------------------------------------------------
# Pipeline benchmark
# --------------------------------------------------------------------------


def frames_from_source(uri, count):
    """Read `count` frames (fewer if the source ends) into memory; UserError if none can be read."""
    from .sources import open_source

    frames = []
    with open_source(uri) as source:
        while len(frames) < count:
            ok, frame, _ = source.read()
            if not ok:
                break
            frames.append(frame.copy())
        error = getattr(source, "error", None)
    if not frames:
        raise UserError("source %s delivered no frames%s; check the camera/file, or use --source synthetic://"
                        % (uri, " (%s)" % error if error else ""))
    if len(frames) < count:
        LOG.warning("source %s ended after %d of %d frames", uri, len(frames), count)
    return frames


def detections_line(index, boxes, probs, labels):
    """The output stage: one JSONL line as `run --jsonl` writes it."""
    detections = []
    for i, box in enumerate(boxes):
        p = probs[i]
        k = int(p.argmax())
        detections.append({"bbox": [int(v) for v in box], "digit": labels[k], "confidence": round(float(p[k]), 4)})
    return json.dumps({"frame": index, "detections": detections})


def pipeline_loop(read, net, manifest, max_frames, warmup=0):
    """capture -> preprocess -> infer -> output, one frame at a time -> (per-stage ms lists, digit counts,
    process CPU ms per timed frame)."""
    from .preprocess import digits_from_frame, read_numbers

    pre = manifest["preprocess"]
    labels = manifest["labels"]
    layout = manifest["input"].get("layout", "NHWC")
    max_digits = min(32, net.max_batch)
    clock = time.perf_counter
    stage_ms = {key: [] for key in STAGES + ("total",)}
    digits = []
    index = 0
    cpu_start = time.process_time()
    while index < max_frames + warmup:
        if index == warmup:
            cpu_start = time.process_time()
        t0 = clock()
        ok, frame, _ = read()
        if not ok:
            break
        t1 = clock()
        found = digits_from_frame(frame, pre, max_digits=max_digits, layout=layout)
        t2 = clock()
        boxes, probs = found.boxes, found.batch[:0]
        if boxes:
            boxes, probs = read_numbers(boxes, net.infer(found.batch), found.numbers, net.infer, max_digits)
        t3 = clock()
        detections_line(index, boxes, probs, labels)
        t4 = clock()
        if index >= warmup:
            for key, a, b in (("capture", t0, t1), ("preprocess", t1, t2), ("infer", t2, t3), ("output", t3, t4),
                              ("total", t0, t4)):
                stage_ms[key].append((b - a) * 1000.0)
            digits.append(len(boxes))
        index += 1
    cpu_ms = (time.process_time() - cpu_start) * 1000.0 / len(digits) if digits else None
    return stage_ms, digits, cpu_ms


def pipeline_summary(stage_ms, digits, source, mode, backend):
    total = stage_ms["total"]
    if not total:
        raise UserError("the pipeline benchmark timed no frames; give more --frames")
    summary = stats.latency_summary(total)
    result = {
        "backend": backend,
        "source": source,
        "mode": mode,
        "frames": len(total),
        "fps": round(stats.fps_from_frame_ms(total), 2),
        "mean_ms": round(summary["mean_ms"], 4),
        "p50_ms": round(summary["p50_ms"], 4),
        "p99_ms": round(summary["p99_ms"], 4),
        "stage_p50_ms": stats.rounded(stats.stage_medians({k: stage_ms[k] for k in STAGES})),
        "digits_per_frame": round(float(sum(digits)) / len(digits), 3),
        "max_digits_per_frame": max(digits),
    }
    return result


def pipeline_backend_name(args, benchmarked):
    if args.pipeline_backend:
        return args.pipeline_backend
    from .backends import auto_order

    order = [name for name in auto_order() if name in benchmarked] or benchmarked
    if not order:
        raise UserError("no backend left for the pipeline benchmark; pick one with --pipeline-backend")
    return order[0]


class _JsonlToMemory(object):
    """The benchmark's output stage: each frame's detections serialised as one JSONL line (kept in memory)."""

    def __init__(self):
        self.last = None

    def write(self, result, live_stats):
        self.last = json.dumps({"frame": result.index, "detections": result.detections,
                                "timing_ms": result.timings})


def _threaded_pipeline(source, backend, manifest, count, warmup, threads, detector=None):
    """pipeline.run_pipeline (detection, inference and output threads; frames in memory are read by the
    detection thread, other sources by a capture thread) -> (stage_ms, digits, fps, cpu ms/frame).

    ``detector``: another digits_from_frame (scripts/ab_detector.py compares revisions); None = the current one."""
    from .pipeline import run_pipeline

    done = []
    cpu_start = time.process_time()

    def on_result(result):
        done.append((time.perf_counter(), dict(result.timings), len(result.boxes), time.process_time()))

    summary = run_pipeline(source, backend, manifest, outputs=[_JsonlToMemory()], max_frames=count + warmup,
                           backend_options=backend_options(backend, threads), smooth_window=0, on_result=on_result,
                           detector=detector)
    if getattr(summary, "error", None):
        raise UserError("the pipeline stopped: %s" % summary.error)
    kept = done[warmup:]
    if not kept:
        raise UserError("the pipeline benchmark timed no frames; give more --frames")
    stage_ms = {key: [t.get(key, 0.0) for _, t, _, _ in kept] for key in STAGES + ("total",)}
    start = done[warmup - 1][0] if warmup > 0 else kept[0][0] - kept[0][1].get("total", 0.0) / 1000.0
    seconds = kept[-1][0] - start
    fps = len(kept) / seconds if seconds > 0 else float("inf")
    cpu_ms = (kept[-1][3] - (done[warmup - 1][3] if warmup > 0 else cpu_start)) * 1000.0 / len(kept)
    return stage_ms, [n for _, _, n, _ in kept], fps, cpu_ms


def _serial_pipeline(source, backend, manifest, count, warmup, threads):
    """Fallback when pipeline.run_pipeline is not there: the same stages in one thread."""
    from .backends import open_backend

    with open_backend(manifest, prefer=backend, **backend_options(backend, threads)) as net:
        stage_ms, digits, cpu_ms = pipeline_loop(source.read, net, manifest, max_frames=count, warmup=warmup)
    fps = stats.fps_from_frame_ms(stage_ms["total"]) if stage_ms["total"] else 0.0
    return stage_ms, digits, fps, cpu_ms


def pipeline_runner(serial=False):
    """(callable, description): the project's threaded pipeline when present, else the serial loop."""
    if serial:
        return _serial_pipeline, "bench serial loop (--serial-pipeline: all stages in one thread)"
    try:
        from .pipeline import run_pipeline  # noqa: F401
    except ImportError:
        return _serial_pipeline, "bench serial loop (edge_runtime.pipeline not found)"
    return _threaded_pipeline, ("pipeline.run_pipeline (detection, inference and output threads; frames from "
                                "memory are read by the detection thread, a source by a capture thread)")


def memory_passes(runner, manifest, frames, backend, threads, repeats, warmup=10):
    """`repeats` passes over the in-memory frames -> (stage ms of all passes, digits, FPS of each pass,
    process CPU ms per frame of each pass)."""
    from .sources import MemorySource

    warmup = min(warmup, len(frames))
    stage_ms = {key: [] for key in STAGES + ("total",)}
    digits, fps, cpu = [], [], []
    for _ in range(repeats):
        source = MemorySource(list(frames[:warmup]) + list(frames))
        pass_ms, pass_digits, pass_fps, pass_cpu = runner(source, backend, manifest, len(frames), warmup, threads)
        for key in stage_ms:
            stage_ms[key].extend(pass_ms[key])
        digits.extend(pass_digits)
        fps.append(pass_fps)
        cpu.append(pass_cpu)
    return stage_ms, digits, fps, cpu


def pipeline_benchmark(manifest, frames, backend, source_uri, threads=0, serial=False, repeats=3):
    """-> pipeline dict: frames from memory (headline: the median of `repeats` passes) plus the
    figure reading the source live."""
    runner, description = pipeline_runner(serial)
    stage_ms, digits, fps, cpu = memory_passes(runner, manifest, frames, backend, threads, repeats)
    result = pipeline_summary(stage_ms, digits, source_uri, "frames from memory", backend)
    result["frames"] = len(frames)
    result["fps"] = round(stats.median(fps), 2)
    result["fps_per_pass"] = [round(f, 2) for f in fps]
    result["cpu_ms_per_frame"] = round(stats.median(cpu), 4)  # process CPU time: not inflated by a busy machine
    result["runner"] = description
    result["precision"] = pipeline_precision(manifest, backend)
    result["frame_size"] = [int(frames[0].shape[1]), int(frames[0].shape[0])]
    try:
        result["from_source"] = live_pipeline(runner, manifest, backend, source_uri, len(frames), threads)
    except UserError as exc:
        LOG.warning("live-source pipeline figure skipped: %s", exc)
        result["from_source"] = {"error": str(exc)}
    return result


def same_frames_ms_per_frame(manifest, frames, backend, threads=0, serial=False, repeats=3):
    """Our pipeline on exactly these frames -> (1000 / median FPS of `repeats` passes, median process CPU
    ms per frame)."""
    runner, _ = pipeline_runner(serial)
    _, _, fps, cpu = memory_passes(runner, manifest, frames, backend, threads, repeats)
    return round(1000.0 / stats.median(fps), 4), round(stats.median(cpu), 4)


def live_pipeline(runner, manifest, backend, source_uri, count, threads):
    from .sources import open_source

    with open_source(source_uri) as source:
        warmup = 5 if getattr(source, "is_live", False) else 0  # files: every frame counts
        stage_ms, digits, fps, _ = runner(source, backend, manifest, count, warmup, threads)
    summary = pipeline_summary(stage_ms, digits, source_uri, "frames read from the source", backend)
    summary["fps"] = round(fps, 2)
    for key in ("backend", "source"):
        summary.pop(key)
    return summary


# --------------------------------------------------------------------------
# Keras baseline (subprocess: edge_runtime never imports TensorFlow)
# --------------------------------------------------------------------------


def project_root():
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def keras_baseline(manifest, frames, keras_model, python=None, timeout=KERAS_TIMEOUT_S):
    """Run train.keras_baseline on `frames` in a subprocess; return its JSON dict."""
    import numpy as np

    keras_model = keras_model or mf.file_path(manifest, "model.keras")
    if not os.path.exists(keras_model):
        raise UserError("--compare-keras needs the Keras model %s, which does not exist; train it on the "
                        "workstation (`make train`) or pass --keras-model FILE" % keras_model)
    root = project_root()
    if not os.path.exists(os.path.join(root, "train", "keras_baseline.py")):
        raise UserError("--compare-keras needs train/keras_baseline.py (workstation checkout); it is not in %s" % root)
    tmp = tempfile.mkdtemp(prefix="bench-keras-")
    frames_path = os.path.join(tmp, "frames.npz")
    out_path = os.path.join(tmp, "result.json")
    np.savez(frames_path, frames=np.stack(frames))
    argv = [python or sys.executable, "-m", "train.keras_baseline", "--model", keras_model,
            "--frames", frames_path, "--out", out_path, "--manifest", mf.manifest_path(mf.bundle_dir(manifest))]
    env = dict(os.environ)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    LOG.info("Keras baseline: %d frames through %s (subprocess)", len(frames), keras_model)
    try:
        proc = subprocess.Popen(argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise UserError("the Keras baseline took longer than %d s; use fewer --keras-frames" % timeout)
        if proc.returncode != 0:
            last = [line for line in (err or "").splitlines() if line.strip()][-3:]
            raise UserError("the Keras baseline failed (exit %d): %s" % (proc.returncode, " | ".join(last)))
        with open(out_path) as handle:
            return json.load(handle)
    finally:
        for name in (frames_path, out_path):
            if os.path.exists(name):
                os.unlink(name)
        os.rmdir(tmp)


def baseline_block(result, ours_ms_per_frame, backend, ours_cpu_ms_per_frame=None):
    """Speed-ups of our pipeline over the two Keras loops on the same frames (ms per frame = 1000 / FPS)."""
    ours = ours_ms_per_frame
    block = {
        "frames": result.get("frames"),
        "keras_predict_ms_per_frame": result["keras_predict_ms_per_frame"],
        "tf_function_ms_per_frame": result["tf_function_ms_per_frame"],
        "pipeline_ms_per_frame": ours,
        "pipeline_backend": backend,
        "speedup_vs_predict": round(result["keras_predict_ms_per_frame"] / ours, 2) if ours else None,
        "speedup_vs_tf_function": round(result["tf_function_ms_per_frame"] / ours, 2) if ours else None,
        "keras_predict_fps": round(1000.0 / result["keras_predict_ms_per_frame"], 2),
        "tf_function_fps": round(1000.0 / result["tf_function_ms_per_frame"], 2),
        "tensorflow": result.get("tensorflow"),
        "keras": result.get("keras"),
        "note": "same frames and the same preprocessing (edge_runtime.preprocess) on both sides; "
                "ms per frame = preprocess + inference + argmax",
    }
    for key in ("predict_only_ms_per_frame", "tf_function_only_ms_per_frame", "preprocess_ms_per_frame"):
        if key in result:
            block[key] = result[key]
    # the same ratios in process CPU time: robust when other work shares the machine
    ours_cpu = ours_cpu_ms_per_frame
    block["pipeline_cpu_ms_per_frame"] = ours_cpu
    for name in ("keras_predict", "tf_function"):
        theirs = result.get(name + "_cpu_ms_per_frame")
        block[name + "_cpu_ms_per_frame"] = theirs
        short = "predict" if name == "keras_predict" else "tf_function"
        block["cpu_speedup_vs_" + short] = round(theirs / ours_cpu, 2) if theirs and ours_cpu else None
    return block


# --------------------------------------------------------------------------
# Outputs: JSON, CSV, Markdown, PNG
# --------------------------------------------------------------------------


def csv_text(csv_rows):
    lines = ["backend,batch,iter,ms"]
    lines.extend("%s,%d,%d,%.6f" % (b, n, i, ms) for b, n, i, ms in csv_rows)
    return "\n".join(lines) + "\n"


def _label(row):
    """A model row's name (rows of older bench.json files have no "label")."""
    return row.get("label") or row["backend"]


def _pipeline_name(p):
    """The pipeline's backend, with ONNX Runtime's precision where it ran INT8."""
    return "%s %s" % (p["backend"], p["precision"]) if p.get("precision") == "int8" else p["backend"]


def markdown(result):
    lines = ["## Model latency (per call)", "",
             "| backend | batch | p50 ms | p90 ms | p99 ms | mean ms | std ms | min ms | images/s | iters |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["model"]:
        lines.append("| %s | %d | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.0f | %d |" % (
            _label(r), r["batch"], r["p50_ms"], r["p90_ms"], r["p99_ms"], r["mean_ms"], r["std_ms"],
            r["min_ms"], r["images_per_s"], r["iters"]))
    split_rows = [r for r in result["model"] if r.get("split_ms")]
    if split_rows:
        lines += ["", "TensorRT split (mean ms, CUDA events, trtexec --exportTimes names):", "",
                  "| backend | batch | h2d | compute | d2h | end_to_end |", "|---|---:|---:|---:|---:|---:|"]
        for r in split_rows:
            cells = ["%.3f" % r["split_ms"][k]["mean"] if k in r["split_ms"] else "-" for k in TRT_SPLIT]
            lines.append("| %s | %d | %s |" % (_label(r), r["batch"], " | ".join(cells)))
    for s in result.get("skipped") or []:
        lines.append("")
        lines.append("skipped %s: %s" % (s["backend"], s["reason"]))
    p = result.get("pipeline")
    if p:
        lines += ["", "## Pipeline (%s, %s, %dx%d, %.2f digits/frame)" % (
            _pipeline_name(p), p["source"], p["frame_size"][0], p["frame_size"][1], p["digits_per_frame"]), "",
            "| frames | FPS | p50 ms | p99 ms | capture | preprocess | infer | output |",
            "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for label, q in (("from memory", p), ("from the source", p.get("from_source") or {})):
            if "fps" not in q:
                continue
            st = q["stage_p50_ms"]
            lines.append("| %s | %.1f | %.3f | %.3f | %s |" % (
                label, q["fps"], q["p50_ms"], q["p99_ms"],
                " | ".join("%.3f" % st[k] if k in st else "-" for k in STAGES)))
        lines.append("")
        lines.append("stage columns are medians in ms; FPS from memory is the median of passes %s (%s); "
                     "process CPU time %.3f ms per frame"
                     % (", ".join("%.1f" % f for f in p.get("fps_per_pass") or []), p.get("runner"),
                        p.get("cpu_ms_per_frame") or 0))
    b = result.get("baseline")
    if b:
        lines += ["", "## Keras baseline (same %s frames, same preprocessing)" % b["frames"], "",
                  "| loop | ms/frame | FPS | our speed-up |", "|---|---:|---:|---:|",
                  "| Keras model.predict per frame | %.2f | %.1f | %.1fx |" % (
                      b["keras_predict_ms_per_frame"], b["keras_predict_fps"], b["speedup_vs_predict"] or 0),
                  "| tf.function per frame | %.2f | %.1f | %.1fx |" % (
                      b["tf_function_ms_per_frame"], b["tf_function_fps"], b["speedup_vs_tf_function"] or 0),
                  "| this pipeline (%s) | %.3f | %.1f | 1.0x |" % (
                      b.get("pipeline_backend") or "?", b["pipeline_ms_per_frame"] or 0,
                      1000.0 / b["pipeline_ms_per_frame"] if b["pipeline_ms_per_frame"] else 0)]
        if b.get("cpu_speedup_vs_predict"):
            lines += ["", "In process CPU time per frame (robust to other work on the machine): Keras predict "
                      "%.2f ms, tf.function %.2f ms, this pipeline %.3f ms: speed-up %.1fx and %.1fx." % (
                          b["keras_predict_cpu_ms_per_frame"], b["tf_function_cpu_ms_per_frame"],
                          b["pipeline_cpu_ms_per_frame"], b["cpu_speedup_vs_predict"],
                          b["cpu_speedup_vs_tf_function"])]
    lines += ["", "Environment: " + "; ".join(envmod.summary_lines(result["environment"]))]
    after = (result.get("environment_after") or {}).get("load_average")
    if after:
        lines[-1] += ("; load average after the run %.2f (the run itself adds up to its thread count; "
                      "more means other work shared the CPU)" % after[0])
    return "\n".join(lines) + "\n"


def write_outputs(out_dir, result, csv_rows):
    paths = {}
    paths["json"] = os.path.join(out_dir, "bench.json")
    mf.atomic_write_json(paths["json"], result)
    paths["csv"] = os.path.join(out_dir, "bench.csv")
    mf.atomic_write_text(paths["csv"], csv_text(csv_rows))
    paths["md"] = os.path.join(out_dir, "bench.md")
    mf.atomic_write_text(paths["md"], markdown(result))
    paths["png"] = os.path.join(out_dir, "bench.png")
    mf.atomic_write_bytes(paths["png"], png_bytes(result))
    return paths


# ---- bench.png with cv2 only (no matplotlib on the Jetson) -----------------

COLOURS = {"tensorrt": (0, 150, 60), "onnxruntime": (200, 90, 0), "onnxruntime int8": (150, 40, 150),
           "opencv": (0, 60, 220)}
INK = (40, 40, 40)
GRID = (225, 225, 225)


def _nice_log_ticks(lo, hi):
    import math

    ticks = []
    for e in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** e
            if lo <= v <= hi:
                ticks.append(v)
    return ticks


def _fmt(v):
    return ("%.3f" % v).rstrip("0").rstrip(".") if v < 10 else "%.0f" % v


def _text(img, text, org, scale=0.45, colour=INK, thickness=1, align="left"):
    import cv2

    (w, h), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    x, y = org
    if align == "right":
        x -= w
    elif align == "centre":
        x -= w // 2
    cv2.putText(img, text, (int(x), int(y)), cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)


def _latency_panel(img, rows, box):
    """p50 latency (log y) against batch (log2 x), one line per backend."""
    import math

    import cv2

    x0, y0, x1, y1 = box
    _text(img, "Model latency p50 (ms per call) vs batch", (x0, y0 - 14), 0.55, thickness=1)
    cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
    if not rows:
        _text(img, "no model rows", ((x0 + x1) // 2, (y0 + y1) // 2), align="centre")
        return
    batches = sorted({r["batch"] for r in rows})
    values = [max(r["p50_ms"], 1e-4) for r in rows]
    lo, hi = min(values) / 1.5, max(values) * 1.5
    ly0, ly1 = math.log10(lo), math.log10(hi)
    bx = [math.log2(b) for b in batches]
    bx0, bx1 = min(bx) - 0.3, max(bx) + 0.3

    def px(batch, ms):
        fx = (math.log2(batch) - bx0) / (bx1 - bx0)
        fy = (math.log10(max(ms, 1e-4)) - ly0) / (ly1 - ly0)
        return int(x0 + fx * (x1 - x0)), int(y1 - fy * (y1 - y0))

    for t in _nice_log_ticks(lo, hi):
        _, yy = px(batches[0], t)
        cv2.line(img, (x0 + 1, yy), (x1 - 1, yy), GRID, 1)
        _text(img, _fmt(t), (x0 - 6, yy + 4), align="right")
    for b in batches:
        xx, _ = px(b, lo)
        cv2.line(img, (xx, y0 + 1), (xx, y1 - 1), GRID, 1)
        _text(img, str(b), (xx, y1 + 18), align="centre")
    _text(img, "batch size (images per call)", ((x0 + x1) // 2, y1 + 38), align="centre")
    _text(img, "ms", (x0 - 40, y0 + 4))
    legend_y = y0 + 20
    for name in sorted({_label(r) for r in rows}):
        colour = COLOURS.get(name, (120, 0, 120))
        points = [px(r["batch"], r["p50_ms"]) for r in sorted(rows, key=lambda r: r["batch"]) if _label(r) == name]
        for i in range(1, len(points)):
            cv2.line(img, points[i - 1], points[i], colour, 2, cv2.LINE_AA)
        for p in points:
            cv2.circle(img, p, 4, colour, -1, cv2.LINE_AA)
        cv2.line(img, (x0 + 12, legend_y - 4), (x0 + 36, legend_y - 4), colour, 2)
        _text(img, name, (x0 + 42, legend_y), colour=colour)
        legend_y += 18


def _fps_panel(img, bars, box):
    """Horizontal FPS bars (log x), value printed at the end of each bar."""
    import math

    import cv2

    x0, y0, x1, y1 = box
    _text(img, "End-to-end frames per second", (x0, y0 - 14), 0.55)
    cv2.rectangle(img, (x0, y0), (x1, y1), INK, 1)
    bars = [(label, v, c) for label, v, c in bars if v and v > 0]
    if not bars:
        _text(img, "no pipeline figures", ((x0 + x1) // 2, (y0 + y1) // 2), align="centre")
        return
    lo = min(v for _, v, _ in bars) / 2.0
    hi = max(v for _, v, _ in bars) * 2.0
    l0, l1 = math.log10(lo), math.log10(hi)

    def px(v):
        return int(x0 + (math.log10(v) - l0) / (l1 - l0) * (x1 - x0))

    for t in _nice_log_ticks(lo, hi):
        xx = px(t)
        cv2.line(img, (xx, y0 + 1), (xx, y1 - 1), GRID, 1)
        _text(img, _fmt(t), (xx, y1 + 18), align="centre")
    _text(img, "frames per second (log scale)", ((x0 + x1) // 2, y1 + 38), align="centre")
    slot = float(y1 - y0) / len(bars)
    for i, (label, value, colour) in enumerate(bars):
        top = int(y0 + i * slot + slot * 0.3)
        bottom = int(y0 + (i + 1) * slot - slot * 0.1)
        cv2.rectangle(img, (x0 + 1, top), (max(x0 + 2, px(value)), bottom), colour, -1)
        _text(img, label, (x0 + 6, top - 4))
        _text(img, "%.1f" % value, (min(px(value) + 6, x1 - 60), (top + bottom) // 2 + 6), 0.55)


def fps_bars(result):
    bars = []
    p = result.get("pipeline") or {}
    colour = COLOURS.get(p.get("backend"), (120, 0, 120))
    if p.get("fps"):
        bars.append(("pipeline, %s, frames from memory" % _pipeline_name(p), p["fps"], colour))
    live = p.get("from_source") or {}
    if live.get("fps"):
        bars.append(("pipeline, %s, reading %s" % (_pipeline_name(p), p["source"]), live["fps"],
                     tuple(int(0.6 * c + 100) for c in colour)))
    b = result.get("baseline") or {}
    if b.get("tf_function_fps"):
        bars.append(("Keras tf.function per frame", b["tf_function_fps"], (130, 130, 130)))
    if b.get("keras_predict_fps"):
        bars.append(("Keras model.predict per frame", b["keras_predict_fps"], (90, 90, 90)))
    return bars


def png_bytes(result, width=1200, height=480):
    import cv2
    import numpy as np

    img = np.full((height, width, 3), 255, np.uint8)
    env = result.get("environment") or {}
    cpu = env.get("cpu") or {}
    jetson = env.get("jetson") or {}
    title = "edge_runtime bench: %s on %s (%s, %s cores)" % (
        result.get("model_name", "?"), jetson.get("model") or env.get("host"), cpu.get("model"), cpu.get("cores"))
    _text(img, title, (20, 28), 0.6, thickness=1)
    _latency_panel(img, result.get("model") or [], (90, 80, 560, 400))
    _fps_panel(img, fps_bars(result), (660, 80, 1170, 400))
    ok, data = cv2.imencode(".png", img)
    if not ok:
        raise UserError("OpenCV could not encode bench.png")
    return data.tobytes()


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def run(args):
    manifest = mf.load(args.model)
    _engine_options.clear()
    _engine_options.update(engine_cache.engine_options(args))
    _ort_options.clear()
    _ort_options["precision"] = args.ort_precision
    names, skipped = backends_to_run(args.backend)
    iters = None if args.seconds else (args.iters or DEFAULT_ITERS)
    env = envmod.collect_environment()
    LOG.info("benchmarking %s: backends %s, batches %s, %s", manifest["name"], ", ".join(names),
             ",".join(str(b) for b in args.batch), "%d iters" % iters if iters else "%.1f s each" % args.seconds)
    rows, csv_rows, failed = model_benchmarks(manifest, names, args.batch, iters, args.seconds, args.warmup,
                                              threads=args.threads, strict=args.backend != "all", seed=args.seed)
    skipped += failed
    result = {
        "environment": env,
        "model_name": manifest["name"],
        "bundle": manifest["_dir"],
        "onnx_sha256": manifest["onnx"].get("sha256"),
        "settings": {"iters": iters, "seconds": args.seconds, "warmup": args.warmup, "batches": args.batch,
                     "threads": args.threads or None,
                     "pipeline_threads": args.pipeline_threads or None, "source": args.source, "frames": args.frames,
                     "serial_pipeline": args.serial_pipeline, "repeats": args.repeats},
        "model": rows,
        "skipped": skipped,
        "pipeline": None,
    }
    frames = None
    if not args.no_pipeline or args.compare_keras:
        frames = frames_from_source(args.source, args.frames)
    if not args.no_pipeline:
        backend = pipeline_backend_name(args, [r["backend"] for r in rows] or names)
        LOG.info("pipeline: %d frames from %s through %s", len(frames), args.source, backend)
        result["pipeline"] = pipeline_benchmark(manifest, frames, backend, args.source, threads=args.pipeline_threads,
                                                serial=args.serial_pipeline, repeats=args.repeats)
    if args.compare_keras:
        same = frames[:args.keras_frames]
        keras = keras_baseline(manifest, same, args.keras_model)
        backend = pipeline_backend_name(args, [r["backend"] for r in rows] or names)
        ours, ours_cpu = same_frames_ms_per_frame(manifest, same, backend, args.pipeline_threads,
                                                  serial=args.serial_pipeline, repeats=args.repeats)
        result["baseline"] = baseline_block(keras, ours, backend, ours_cpu)
    result["environment_after"] = envmod.thermal_snapshot()
    paths = write_outputs(args.out, result, csv_rows)
    sys.stdout.write(markdown(result))
    sys.stdout.flush()
    LOG.info("wrote %s", ", ".join(paths[k] for k in ("json", "csv", "md", "png")))
    return 0
