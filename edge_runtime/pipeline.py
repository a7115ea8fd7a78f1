"""The live pipeline: capture -> recognition -> outputs, each stage in its own thread.

    summary = run_pipeline(open_source("synthetic://"), "onnxruntime", manifest.load("artifacts/cnn"),
                           outputs=[JsonlOutput("out.jsonl")], max_frames=300)
    print(summary.format())

* Capture runs in a thread, digit detection in ``workers`` threads (default 1; order
  kept), inference in another, outputs in the calling thread (OpenCV windows want the
  main thread). Measured on the 2-core box with 640x480 in-memory frames, 5 alternating
  passes: workers=1 (detection overlaps inference) 1042 FPS, p99 2.0-3.1 ms; workers=0
  (detection in the inference thread, one hand-over less) 745 FPS, p99 1.9-2.2 ms, and
  clearly better latency when other jobs load the CPU; workers=2 939 FPS, p99 6.4-8.4 ms
  (the GIL's hand-overs cost more than the second thread gains on 2 cores).
  Stages are joined by small bounded channels,
  so the frame rate is set by the slowest stage.
* Live sources: newest frame wins (a stage never works on a stale frame).
  Files, folders and in-memory frames: lossless (every frame, in order).
* Frames already in memory (``source.read_in_worker``: MemorySource, not live) need no
  capture: the detection thread takes them itself, without a capture thread's hand-over.
  Measured side by side (300 synthetic 640x480 frames, 5 passes each): 1093 FPS, p50 1.39 ms,
  p99 1.8-2.3 ms, against 1041 FPS, p50 2.32 ms (a capture thread reading ahead: each frame
  waits its turn in the queue) and 889 FPS, p50 1.51 ms (reading on demand).
* A detection thread also makes the pieces of the frame's possible numbers
  (``Numbers.prepare``) while the frame is in its caches; the inference thread reads only those
  whose box the model doubts. Made there on demand they cost 2-3x as much and held up the model's
  thread: side by side on the slow 2-core VM, p99 6.91 -> 5.36 ms for 494 -> 478 FPS.
* The backend is opened, used and closed inside the inference thread (TensorRT's
  pycuda context is bound to the thread that made it); all digits of a frame are one batch.
* Per-frame stage times (ms): capture (time in source.read(): decoding a file, or
  waiting for a camera's next frame), preprocess, infer (backend + smoothing), output,
  total (frame latency: from when a camera frame arrived, or a file read began, to the
  end of the outputs, queue waits included).
"""

import logging
import sys
import threading
import time
from collections import deque

import numpy as np

from .backends import open_backend

LOG = logging.getLogger(__name__)

STAGES = ("capture", "preprocess", "infer", "output", "total")
DEFAULT_MIN_CONFIDENCE = 0.6
DEFAULT_SMOOTH_WINDOW = 5
MAX_KEPT_TIMINGS = 200000  # per-frame timings kept for the summary (about 10 MB)
# The GIL hand-over interval during a run (Python's default is 5 ms): a stage thread woken
# by a frame waits less for a busy one. Measured on the 2-core box: lower frame latency.
DEFAULT_SWITCH_INTERVAL_S = 0.0005
# OpenCV's own thread pool during a run: the pipeline's threads already keep the cores busy, and
# on a 2-core box cv2's parallel_for costs ~40 % more CPU per detected frame (measured: 2.4 vs
# 1.75 ms of CPU per 640x480 frame) for no gain. None leaves OpenCV's setting alone.
DEFAULT_CV2_THREADS = 1
# ONNX Runtime's intra-op threads when backend_options do not say (None there = ONNX Runtime's
# choice): with its default of one per core, its spinning workers take the core detection needs
# (measured on the 2-core box: 5.2 vs 3.4 ms of process CPU per frame, p99 7.6-10 vs 5.0-6.9 ms).
DEFAULT_ORT_THREADS = 1

clock = time.perf_counter


class Closed(Exception):
    """The channel was closed and is empty."""


class FrameChannel(object):
    """A bounded hand-over between two threads.

    ``newest_wins``: put() never blocks and replaces the oldest waiting item (counted
    in ``dropped``). Otherwise put() waits for space (lossless back-pressure).
    """

    def __init__(self, capacity=1, newest_wins=False):
        self.capacity = max(1, int(capacity))
        self.newest_wins = bool(newest_wins)
        self.dropped = 0
        self._items = deque()
        self._closed = False
        self._waiting = 0  # consumers blocked in get()
        self._cond = threading.Condition()

    def wait_for_space(self, stop, on_demand=False):
        """Block until a put() would not block (or ``stop`` is set). False when stopping.

        The capture stage calls this before reading, so it never reads a frame only to
        drop it. ``on_demand``: wait until a consumer is idle and waiting, so the frame is
        read just when it can be processed: the newest camera frame, and no time spent
        queued (lowest latency). Without it the next frame is read ahead (worth it when
        reading costs time: decoding files).
        """
        with self._cond:
            while not stop.is_set() and not self._closed:
                if len(self._items) < self.capacity and (not on_demand or (not self._items and self._waiting)):
                    break
                self._cond.wait(0.05)
        return not stop.is_set() and not self._closed

    def put(self, item, stop):
        with self._cond:
            if self.newest_wins:
                while len(self._items) >= self.capacity:
                    self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.capacity and not stop.is_set() and not self._closed:
                    self._cond.wait(0.05)
                if stop.is_set() or self._closed:
                    return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout=0.1):
        """The next item; None on timeout; raises Closed when closed and empty."""
        with self._cond:
            if not self._items and not self._closed:
                self._waiting += 1
                self._cond.notify_all()  # wake an on-demand producer
                try:
                    self._cond.wait(timeout)
                finally:
                    self._waiting -= 1
            if self._items:
                item = self._items.popleft()
                self._cond.notify_all()
                return item
            if self._closed:
                raise Closed()
            return None

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class ReorderBuffer(object):
    """Items from parallel workers, handed out in ``seq`` order (0, 1, 2, ...).

    At most ``capacity`` items wait; the item the consumer needs next is always let in
    (so a full buffer cannot deadlock the worker holding it).
    """

    def __init__(self, capacity=1):
        self.capacity = max(1, int(capacity))
        self._items = {}
        self._next = 0
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item, stop):
        with self._cond:
            while (len(self._items) >= self.capacity and item.seq != self._next
                   and not stop.is_set() and not self._closed):
                self._cond.wait(0.05)
            self._items[item.seq] = item
            self._cond.notify_all()

    def get(self, timeout=0.1):
        """The next item in order; None on timeout; raises Closed when closed and drained."""
        with self._cond:
            if self._next not in self._items and not self._closed:
                self._cond.wait(timeout)
            if self._next in self._items:
                item = self._items.pop(self._next)
                self._next += 1
                self._cond.notify_all()
                return item
            if self._closed:
                raise Closed()
            return None

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()


_SKIPPED = object()  # _read_frame: the source gave a frame that cannot be used (skipped and counted)


class FrameResult(object):
    """One recognised frame: what outputs receive."""

    __slots__ = ("index", "name", "frame", "boxes", "numbers", "batch", "probs", "detections", "timings", "truth", "t0",
                 "seq")

    def __init__(self, index, name, frame, t0, capture_ms, truth=None):
        self.index = index
        self.name = name
        self.frame = frame
        self.t0 = t0
        self.timings = {"capture": capture_ms}
        self.truth = truth
        self.boxes = []
        self.numbers = None
        self.batch = None
        self.probs = None
        self.detections = []
        self.seq = -1


def _label_value(label):
    return int(label) if label.isdigit() else label


def detections_from_probs(boxes, probs, labels, min_confidence):
    """[{bbox, digit, confidence, low_confidence}] from boxes and class probabilities."""
    if len(boxes) == 0:
        return []
    best = probs.argmax(axis=1)
    conf = probs[np.arange(len(boxes)), best]
    out = []
    for i, box in enumerate(boxes):
        k, c = best[i], conf[i]
        out.append({
            "bbox": [int(v) for v in box],
            "digit": _label_value(labels[int(k)]),
            "confidence": round(float(c), 4),
            "low_confidence": bool(c < min_confidence),
        })
    return out


def infer_in_batches(net, manifest, batch, max_batch):
    """``net``'s probabilities for a preprocessed NHWC ``batch``, laid out for the manifest's model and
    fed at most ``max_batch`` at a time (a TensorRT engine's batch size)."""
    batch = batch_for_manifest(batch, manifest)
    if len(batch) <= max_batch:
        return net.infer(batch)
    parts = [net.infer(batch[i:i + max_batch]) for i in range(0, len(batch), max_batch)]
    return np.concatenate(parts, axis=0)


def batch_for_manifest(batch, manifest):
    """preprocess gives NHWC [N, 28, 28, 1]; transpose for an NCHW model."""
    if manifest["input"]["layout"] == "NCHW" and batch.ndim == 4 and batch.shape[-1] == 1:
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
    return batch


def default_detector():
    from .preprocess import digits_from_frame

    return digits_from_frame


def percentiles(values):
    if not len(values):
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "mean": 0.0, "max": 0.0}
    from .stats import latency_summary  # the one definition of the percentiles (bench uses it too)

    summary = latency_summary(values)
    return {key: round(summary[key + "_ms"], 3) for key in ("p50", "p90", "p99", "mean", "max")}


class Summary(object):
    """What a run did: frames, FPS, stage percentiles (ms), drops, and per-frame timings."""

    def __init__(self):
        self.frames = 0
        self.captured = 0
        self.seconds = 0.0
        self.detections = 0
        self.low_confidence = 0
        self.skipped = 0
        self.dropped = 0
        self.backend = None
        self.backend_info = {}
        self.source = ""
        self.stopped_by = "end of source"
        self.error = None
        self.truth_digits = 0
        self.truth_correct = 0
        self.timings = deque(maxlen=MAX_KEPT_TIMINGS)  # rows (capture, preprocess, infer, output, total) ms

    @property
    def fps(self):
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def stage_array(self):
        """float64 [frames, 5] in STAGES order (ms)."""
        if not self.timings:
            return np.zeros((0, len(STAGES)))
        return np.asarray(self.timings, dtype=np.float64)

    def stages(self):
        arr = self.stage_array()
        return {name: percentiles(arr[:, i] if len(arr) else []) for i, name in enumerate(STAGES)}

    def as_dict(self):
        out = {
            "frames": self.frames, "captured": self.captured, "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2), "detections": self.detections, "low_confidence": self.low_confidence,
            "skipped": self.skipped, "dropped": self.dropped, "backend": self.backend,
            "source": self.source, "stopped_by": self.stopped_by, "stages_ms": self.stages(),
        }
        if self.backend_info.get("precision"):
            out["precision"] = self.backend_info["precision"]
        if self.truth_digits:
            out["synthetic_accuracy"] = round(self.truth_correct / float(self.truth_digits), 4)
        if self.error:
            out["error"] = self.error
        return out

    def format(self):
        d = self.as_dict()
        lines = [
            "summary: %d frames in %.2f s = %.1f FPS, backend %s, source %s (stopped: %s)"
            % (d["frames"], d["seconds"], d["fps"], "%s (%s)" % (d["backend"], d["precision"]) if d.get("precision")
               else d["backend"], d["source"], d["stopped_by"]),
            "  detections %d (%d low confidence), skipped %d unreadable, dropped %d stale"
            % (d["detections"], d["low_confidence"], d["skipped"], d["dropped"]),
        ]
        if "synthetic_accuracy" in d:
            lines.append("  synthetic ground truth: %d/%d digits correct (%.1f%%)"
                         % (self.truth_correct, self.truth_digits, 100.0 * d["synthetic_accuracy"]))
        lines.append("  stage ms      p50      p90      p99")
        for name in STAGES:
            s = d["stages_ms"][name]
            lines.append("  %-10s %8.3f %8.3f %8.3f" % (name, s["p50"], s["p90"], s["p99"]))
        if self.error:
            lines.append("  error: %s" % self.error)
        return "\n".join(lines)


def score_against_truth(detections, truth):
    """(digits in truth, digits recognised correctly), matched as scenes.match_detections does
    (one-to-one, IoU >= 0.3); a low-confidence reading (shown as "?") does not count as correct."""
    from .scenes import match_detections

    if not truth:
        return 0, 0
    readings = [{"bbox": d["bbox"], "digit": None if d["low_confidence"] else d["digit"]} for d in detections]
    return len(truth), match_detections(readings, truth).correct


def detect_digits(result, detector, manifest, roi, max_digits, prepare_numbers=False):
    """Stage 2 (any worker thread): frame -> boxes + [N, 28, 28, 1] batch, timed as ``preprocess``.

    ``prepare_numbers``: also make the pieces of the boxes that may be numbers now (``Numbers.prepare``),
    so that the inference thread only picks the ones it needs. Worth it where detection has its own
    thread: measured on the slow 2-core VM (300 ``synthetic://`` frames, 5 alternating passes),
    p99 frame latency 6.91 -> 5.36 ms for 494 -> 478 FPS."""
    t0 = clock()
    found = detector(result.frame, manifest["preprocess"], roi=roi, max_digits=max_digits)
    result.boxes = [tuple(int(v) for v in b) for b in found.boxes]
    result.numbers = getattr(found, "numbers", None)  # (a detector of another revision may have none)
    if prepare_numbers and result.numbers is not None:
        result.numbers.prepare()  # (as many pieces as read_numbers may read)
    result.batch = found.batch
    result.timings["preprocess"] = (clock() - t0) * 1e3
    return result


class _Classifier(object):
    """Stage 3: batch -> backend -> (smoothed) detections. Lives in the thread that opened the backend."""

    def __init__(self, net, manifest, min_confidence, smoother):
        self.net = net
        self.manifest = manifest
        self.min_confidence = min_confidence
        self.smoother = smoother
        self.labels = manifest["labels"]
        self.max_batch = int(getattr(net, "max_batch", 1 << 30))
        from .preprocess import read_numbers

        self.read_numbers = read_numbers

    def infer(self, batch):
        return infer_in_batches(self.net, self.manifest, batch, self.max_batch)

    def __call__(self, result):
        t0 = clock()
        boxes = result.boxes
        if boxes:
            probs = self.infer(np.asarray(result.batch, dtype=np.float32))
            boxes, probs = self.read_numbers(boxes, probs, result.numbers, self.infer)
            result.boxes = boxes
        else:
            probs = np.zeros((0, len(self.labels)), np.float32)
        result.numbers = None  # (it holds the frame's working images)
        if self.smoother is not None:
            probs, _ = self.smoother.update(boxes, probs)
        result.probs = probs
        result.batch = None  # not needed downstream
        result.detections = detections_from_probs(boxes, probs, self.labels, self.min_confidence)
        result.timings["infer"] = (clock() - t0) * 1e3
        return result


class Pipeline(object):
    """Three stages in three threads; see run_pipeline() for the arguments."""

    def __init__(self, source, backend_name, manifest, outputs=(), max_frames=None,
                 min_confidence=DEFAULT_MIN_CONFIDENCE, smooth_window=None, detector=None, roi=None,
                 max_digits=32, backend_options=None, stop_event=None, on_result=None, channel_capacity=1,
                 workers=1, switch_interval_s=DEFAULT_SWITCH_INTERVAL_S, cv2_threads=DEFAULT_CV2_THREADS):
        self.source = source
        self.backend_name = backend_name
        self.manifest = manifest
        self.outputs = list(outputs)
        self.max_frames = max_frames
        self.min_confidence = float(min_confidence)
        if smooth_window is None:
            temporal = getattr(source, "temporal", None)
            if temporal is None:
                temporal = getattr(source, "is_live", False)
            smooth_window = DEFAULT_SMOOTH_WINDOW if temporal else 0
        self.smooth_window = int(smooth_window)
        self.detector = detector
        self.roi = roi
        self.max_digits = int(max_digits)
        self.backend_options = dict(backend_options or {})
        self.backend_options.setdefault("intra_op_threads", DEFAULT_ORT_THREADS)  # (other backends ignore it)
        self.stop = stop_event or threading.Event()
        self.on_result = on_result
        live = bool(getattr(source, "is_live", False))
        self.workers = max(0, int(workers))  # 0: detect in the inference thread (no hand-over)
        # Frames in memory: the thread that detects reads them (reading costs nothing; no capture thread).
        self.read_in_worker = bool(getattr(source, "read_in_worker", False)) and not live
        self.switch_interval_s = switch_interval_s
        self.cv2_threads = cv2_threads
        self.to_recognition = FrameChannel(channel_capacity, newest_wins=live)
        self.to_infer = ReorderBuffer(max(1, self.workers))
        self.to_output = FrameChannel(channel_capacity, newest_wins=live)
        self._dispatch_lock = threading.Lock()
        self._dispatched = 0
        self._source_done = False
        self._workers_left = self.workers
        self.backend_ready = threading.Event()
        self.errors = []
        self.summary = Summary()
        self.summary.source = getattr(source, "uri", "") or type(source).__name__
        self.live_stats = {"fps": 0.0}

    # -- stage 1: capture ---------------------------------------------------
    def _capture_loop(self):
        index = 0
        live = getattr(self.source, "is_live", False)
        on_demand = not getattr(self.source, "read_ahead", False)
        try:
            self.backend_ready.wait()
            while not self.stop.is_set():
                if self.max_frames is not None and not live and index >= self.max_frames:
                    break
                if not self.to_recognition.wait_for_space(self.stop, on_demand):
                    break
                item = self._read_frame(index, live)
                if item is None:
                    break
                if item is not _SKIPPED:
                    index += 1
                    self.to_recognition.put(item, self.stop)
        except Exception as exc:  # a source failing mid-run ends the run with its message
            LOG.debug("capture failed", exc_info=True)
            self.errors.append("capture failed: %s" % exc)
        finally:
            self.summary.captured = index
            self.to_recognition.close()

    def _read_frame(self, index, live=False):
        """source.read() -> a FrameResult numbered ``index``; _SKIPPED for an unusable frame (counted);
        None at the end of the source (its error, if any, recorded)."""
        from .sources import bgr_frame

        t0 = clock()
        ok, frame, name = self.source.read()
        t1 = clock()
        if not ok:
            err = getattr(self.source, "error", None)
            if err:
                self.errors.append(err)
            return None
        bgr = bgr_frame(frame)
        if bgr is None:
            self.source.skipped += 1
            LOG.warning("skipping frame %s: empty or unsupported frame %s", name,
                        getattr(frame, "shape", type(frame).__name__))
            return _SKIPPED
        # latency starts when a live frame arrived (camera grab), else when reading began
        arrived = getattr(self.source, "frame_time", None) if live else None
        start = arrived if arrived is not None else t0
        return FrameResult(index, name, bgr, start, (t1 - t0) * 1e3, getattr(self.source, "last_truth", None))

    def _read_in_worker(self):
        """The next in-memory frame, read by the calling (detection) thread; raises Closed at the end."""
        while True:
            if self._source_done or (self.max_frames is not None and self.summary.captured >= self.max_frames):
                raise Closed()
            try:
                item = self._read_frame(self.summary.captured)
            except Exception as exc:
                LOG.debug("reading a frame failed", exc_info=True)
                self.errors.append("capture failed: %s" % exc)
                item = None
            if item is None:
                self._source_done = True
                raise Closed()
            if item is not _SKIPPED:
                self.summary.captured += 1
                return item

    # -- stage 2: digit detection (``workers`` threads) -----------------------
    def _next_for_detection(self):
        with self._dispatch_lock:  # take + number atomically, so the order is kept
            item = self._read_in_worker() if self.read_in_worker else self.to_recognition.get()
            if item is not None:
                item.seq = self._dispatched
                self._dispatched += 1
            return item

    def _detect_loop(self):
        try:
            self.backend_ready.wait()
            detector = self.detector or default_detector()
            while not self.stop.is_set():
                try:
                    item = self._next_for_detection()
                except Closed:
                    break
                if item is not None:
                    self.to_infer.put(detect_digits(item, detector, self.manifest, self.roi, self.max_digits,
                                                    prepare_numbers=True), self.stop)
        except Exception as exc:
            LOG.debug("digit detection failed", exc_info=True)
            self.errors.append(exc)
            self.stop.set()
        finally:
            with self._dispatch_lock:
                self._workers_left -= 1
                if self._workers_left == 0:
                    self.to_infer.close()

    # -- stage 3: inference (the thread that owns the backend) -------------
    def _infer_loop(self):
        from .smoothing import TemporalSmoother

        net = None
        try:
            try:
                if self.detector is None:
                    default_detector()  # fail before opening a camera if preprocess is missing
                net = open_backend(self.manifest, self.backend_name, **self.backend_options)
                net.activate()
                self.summary.backend = net.name
                self.summary.backend_info = net.describe()
            finally:
                self.backend_ready.set()
            smoother = TemporalSmoother(self.smooth_window) if self.smooth_window > 0 else None
            classify = _Classifier(net, self.manifest, self.min_confidence, smoother)
            fused = self.workers == 0
            detector = (self.detector or default_detector()) if fused else None
            while not self.stop.is_set():
                try:
                    item = self._next_for_detection() if fused else self.to_infer.get()
                except Closed:
                    break
                if item is None:
                    continue
                if fused:
                    detect_digits(item, detector, self.manifest, self.roi, self.max_digits)
                self.to_output.put(classify(item), self.stop)
        except Exception as exc:
            LOG.debug("inference failed", exc_info=True)
            self.errors.append(exc)
            self.stop.set()
        finally:
            if net is not None:
                try:
                    net.deactivate()
                except Exception as exc:  # keep the first error, log this one
                    LOG.warning("closing the %s backend failed: %s", self.backend_name, exc)
            self.to_output.close()

    # -- stage 3: outputs (calling thread) ---------------------------------
    def _emit(self, result):
        t0 = clock()
        for out in self.outputs:
            if getattr(out, "is_final", False):
                continue
            out.write(result, self.live_stats)
        t1 = clock()
        result.timings["output"] = (t1 - t0) * 1e3
        result.timings["total"] = (t1 - result.t0) * 1e3
        for out in self.outputs:
            if getattr(out, "is_final", False):
                out.write(result, self.live_stats)
        if self.on_result is not None:
            self.on_result(result)
        for out in self.outputs:
            if getattr(out, "wants_stop", False):
                self.summary.stopped_by = "window closed"
                self.stop.set()

    def _account(self, result):
        s = self.summary
        s.frames += 1
        s.detections += len(result.detections)
        s.low_confidence += sum(1 for d in result.detections if d["low_confidence"])
        t = result.timings
        s.timings.append((t["capture"], t["preprocess"], t["infer"], t["output"], t["total"]))
        if result.truth is not None:
            n, ok = score_against_truth(result.detections, result.truth)
            s.truth_digits += n
            s.truth_correct += ok

    def run(self):
        import cv2

        previous_interval = sys.getswitchinterval()
        previous_cv2_threads = cv2.getNumThreads()
        if self.switch_interval_s:
            sys.setswitchinterval(self.switch_interval_s)
        if self.cv2_threads is not None:
            cv2.setNumThreads(int(self.cv2_threads))
        try:
            return self._run()
        finally:
            sys.setswitchinterval(previous_interval)
            cv2.setNumThreads(previous_cv2_threads)

    def _run(self):
        threads = [threading.Thread(target=self._infer_loop, name="infer", daemon=True)]
        if not self.read_in_worker:
            threads.append(threading.Thread(target=self._capture_loop, name="capture", daemon=True))
        threads += [threading.Thread(target=self._detect_loop, name="detect-%d" % i, daemon=True)
                    for i in range(self.workers)]
        for t in threads:
            t.start()
        started = None
        finished = None
        last = None
        ema_dt = None
        try:
            while True:
                if self.stop.is_set() and self.errors:
                    break
                try:
                    result = self.to_output.get(0.1)
                except Closed:
                    break
                if result is None:
                    if self.stop.is_set():
                        break
                    continue
                if started is None:
                    started = result.t0
                now = clock()
                if last is not None:
                    dt = now - last
                    ema_dt = dt if ema_dt is None else 0.9 * ema_dt + 0.1 * dt
                    self.live_stats["fps"] = 1.0 / ema_dt if ema_dt > 0 else 0.0
                last = now
                self._emit(result)
                finished = clock()
                self._account(result)
                self.live_stats.update({"frames": self.summary.frames, "last_ms": dict(result.timings)})
                if self.max_frames is not None and self.summary.frames >= self.max_frames:
                    self.summary.stopped_by = "max frames"
                    break
        except KeyboardInterrupt:
            self.summary.stopped_by = "interrupted"
        finally:
            if self.stop.is_set() and self.summary.stopped_by == "end of source":
                self.summary.stopped_by = "stop requested"
            self.stop.set()
            for t in threads:
                t.join(timeout=5.0)
            if started is not None and finished is not None:
                self.summary.seconds = finished - started  # first capture start to last output end
            self.summary.skipped = getattr(self.source, "skipped", 0)
            self.summary.dropped = (getattr(self.source, "dropped", 0) + self.to_recognition.dropped
                                    + self.to_output.dropped)
        if self.errors:
            err = self.errors[0]
            if not isinstance(err, Exception):
                self.summary.error = str(err)
                self.summary.stopped_by = "source failed"
            else:
                raise err
        return self.summary


def run_pipeline(source, backend_name, manifest, outputs=(), max_frames=None, **options):
    """Run source -> recognition -> outputs until the source ends, max_frames, or stop_event; -> Summary.

    options: min_confidence (0.6), smooth_window (None = 5 for sources whose frames continue each
    other: cameras, synthetic:// with hold > 1; 0 otherwise),
    detector (callable like preprocess.digits_from_frame), roi (x, y, w, h), max_digits (32),
    backend_options (dict for the backend class; intra_op_threads defaults to 1 here, None = ONNX
    Runtime's choice), stop_event
    (threading.Event), on_result (callback per FrameResult in the output thread),
    channel_capacity (1), workers (1 detection thread; 0 = detect in the inference thread),
    switch_interval_s (0.0005: the GIL interval during the run, restored after; None = leave it),
    cv2_threads (1: OpenCV's thread pool size during the run, restored after; None = leave it).
    Backend and setup errors are raised; a source that fails mid-run ends the run and is
    reported in ``summary.error``.
    Outputs are opened and closed by the caller.
    """
    return Pipeline(source, backend_name, manifest, outputs=outputs, max_frames=max_frames, **options).run()
