"""The threaded pipeline: numbers through the stages, ordering, stop, errors, odd frames."""

import threading
import time
from collections import namedtuple

import numpy as np
import pytest

from edge_runtime.backends import BackendError
from edge_runtime.pipeline import (
    STAGES,
    Closed,
    FrameChannel,
    detections_from_probs,
    run_pipeline,
    score_against_truth,
)
from edge_runtime.sources import MemorySource
from tests.fixtures.tiny import linear_reference

StandIn = namedtuple("StandIn", "boxes batch")


class GridDetector(object):
    """Stand-in for preprocess.digits_from_frame: `count` boxes in a row, batch = seeded crops of the frame."""

    def __init__(self, count=3):
        self.count = count
        self.calls = []

    def __call__(self, frame, pre, roi=None, max_digits=32):
        self.calls.append((frame.shape, roi, max_digits))
        n = min(self.count, max_digits)
        boxes = [(10 + 40 * i, 20, 30, 36) for i in range(n)]
        level = float(frame[0, 0, 0]) / 255.0
        rng = np.random.RandomState(int(frame[0, 0, 0]))
        batch = (rng.rand(n, 28, 28, 1) * level).astype(np.float32)
        return StandIn(boxes, batch)


def frames_with_levels(levels, shape=(120, 160, 3)):
    return [np.full(shape, v, np.uint8) for v in levels]


def test_every_frame_in_order_with_reference_probabilities(tiny_bundle):
    det = GridDetector(3)
    results = []
    src = MemorySource(frames_with_levels([10, 60, 110, 160, 210]), names=list("abcde"))
    summary = run_pipeline(src, "onnxruntime", tiny_bundle, detector=det, on_result=results.append,
                           min_confidence=0.0)
    assert [r.name for r in results] == list("abcde") and [r.index for r in results] == [0, 1, 2, 3, 4]
    for r in results:
        _, expected = GridDetector(3)(r.frame, None)
        ref = linear_reference(expected)
        assert np.abs(r.probs - ref).max() < 1e-5  # no smoothing for non-live sources
        assert [d["digit"] for d in r.detections] == list(ref.argmax(axis=1))
        assert [d["bbox"] for d in r.detections] == [[10, 20, 30, 36], [50, 20, 30, 36], [90, 20, 30, 36]]
    assert summary.frames == 5 and summary.captured == 5 and summary.detections == 15
    assert summary.backend == "onnxruntime" and summary.stopped_by == "end of source"
    assert summary.stage_array().shape == (5, len(STAGES))
    stages = summary.stages()
    assert set(stages) == set(STAGES)
    assert all(stages["total"]["p50"] >= stages[k]["p50"] for k in ("preprocess", "infer"))
    assert summary.fps > 0


def test_max_frames_roi_and_max_digits_reach_the_detector(tiny_bundle):
    det = GridDetector(5)
    src = MemorySource(frames_with_levels([50]), loops=None)
    summary = run_pipeline(src, "opencv", tiny_bundle, detector=det, max_frames=7, roi=(1, 2, 30, 40), max_digits=2)
    assert summary.frames == 7 and summary.stopped_by == "max frames"
    assert summary.detections == 14
    assert det.calls[0] == ((120, 160, 3), (1, 2, 30, 40), 2)


def test_low_confidence_is_flagged():
    probs = np.array([[0.05] * 9 + [0.55], [0.9] + [0.1 / 9] * 9], np.float32)
    dets = detections_from_probs([(0, 0, 5, 5), (9, 9, 5, 5)], probs, [str(i) for i in range(10)], 0.6)
    assert [(d["digit"], d["low_confidence"]) for d in dets] == [(9, True), (0, False)]
    assert dets[0]["confidence"] == pytest.approx(0.55)


def test_live_source_is_smoothed_and_never_blocks(tiny_bundle):
    det = GridDetector(2)
    seen = []  # every frame the recogniser saw, in order (outputs may drop some: newest wins)

    def detector(frame, pre, roi=None, max_digits=32):
        seen.append(id(frame))
        return det(frame, pre, roi, max_digits)

    frames = frames_with_levels([30, 200, 90, 250] * 10)
    results = []
    summary = run_pipeline(MemorySource(frames, is_live=True), "onnxruntime", tiny_bundle, detector=detector,
                           on_result=results.append)
    assert summary.frames + summary.dropped == 40 and summary.frames >= 1
    refs = dict((id(f), linear_reference(GridDetector(2)(f, None)[1])) for f in frames)
    for r in results:
        # the mean of the reference probabilities over the last 5 recognised frames (same boxes)
        pos = seen.index(id(r.frame))
        expected = np.mean(np.stack([refs[k] for k in seen[max(0, pos - 4):pos + 1]]), axis=0)
        assert np.abs(r.probs - expected).max() < 1e-5
    assert np.abs(results[-1].probs - refs[id(results[-1].frame)]).max() > 1e-4  # averaged, not per frame


def test_stop_event_ends_an_endless_source(tiny_bundle):
    stop = threading.Event()
    src = MemorySource(frames_with_levels([40, 80]), loops=None, is_live=True)
    timer = threading.Timer(0.5, stop.set)
    timer.start()
    t0 = time.time()
    summary = run_pipeline(src, "onnxruntime", tiny_bundle, detector=GridDetector(1), stop_event=stop)
    assert time.time() - t0 < 5
    assert summary.frames > 0 and summary.stopped_by == "stop requested"


def test_unknown_backend_raises_before_any_frame(tiny_bundle):
    with pytest.raises(BackendError):
        run_pipeline(MemorySource(frames_with_levels([1])), "nope", tiny_bundle, detector=GridDetector())


class FailingSource(MemorySource):
    def __init__(self):
        MemorySource.__init__(self, frames_with_levels([20, 40, 60]))

    def read(self):
        ok, frame, name = MemorySource.read(self)
        if not ok:
            self.error = "camera fake stopped delivering frames"
        return ok, frame, name


def test_source_failure_is_reported_in_the_summary(tiny_bundle):
    summary = run_pipeline(FailingSource(), "onnxruntime", tiny_bundle, detector=GridDetector())
    assert summary.frames == 3 and summary.error == "camera fake stopped delivering frames"
    assert summary.stopped_by == "source failed"


def test_odd_frames_with_the_real_detector(tiny_bundle):
    pytest.importorskip("edge_runtime.preprocess")
    rng = np.random.RandomState(0)
    frames = [
        np.zeros((480, 640, 3), np.uint8),  # black
        np.full((480, 640, 3), 255, np.uint8),  # white
        rng.randint(0, 256, (480, 640, 3)).astype(np.uint8),  # noise
        np.full((240, 320), 128, np.uint8),  # grayscale
        np.full((240, 320, 4), 200, np.uint8),  # BGRA
        np.zeros((0, 0, 3), np.uint8),  # empty: skipped
        np.full((3000, 4000, 3), 255, np.uint8),  # huge
        np.zeros((1, 1, 3), np.uint8),  # tiny
    ]
    results = []
    summary = run_pipeline(MemorySource(frames), "onnxruntime", tiny_bundle, on_result=results.append)
    assert summary.frames == 7 and summary.skipped == 1
    assert [r.frame.shape[2] for r in results] == [3] * 7
    for r in results:
        h, w = r.frame.shape[:2]
        for d in r.detections:
            x, y, bw, bh = d["bbox"]
            assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h


def test_synthetic_truth_is_scored():
    truth = [{"bbox": [10, 10, 20, 30], "digit": 4}, {"bbox": [100, 10, 20, 30], "digit": 2}]
    dets = [{"bbox": [11, 11, 20, 30], "digit": 4, "low_confidence": False},
            {"bbox": [100, 10, 20, 30], "digit": 3, "low_confidence": False}]
    assert score_against_truth(dets, truth) == (2, 1)
    assert score_against_truth(dets, None) == (0, 0)


def test_channel_lossless_and_newest_wins():
    stop = threading.Event()
    lossless = FrameChannel(1)
    assert lossless.put(1, stop)
    stop.set()
    assert lossless.put(2, stop) is False  # full and stopping: does not block
    newest = FrameChannel(1, newest_wins=True)
    for i in range(5):
        newest.put(i, threading.Event())
    assert newest.get() == 4 and newest.dropped == 4
    newest.close()
    with pytest.raises(Closed):
        newest.get()


class JitteryDetector(GridDetector):
    """Takes a random 0-4 ms per frame, so parallel workers finish out of order."""

    def __init__(self, count=2):
        GridDetector.__init__(self, count)
        self.rng = np.random.RandomState(5)
        self.threads = set()
        self.lock = threading.Lock()

    def __call__(self, frame, pre, roi=None, max_digits=32):
        with self.lock:
            delay = self.rng.uniform(0, 0.004)
            self.threads.add(threading.current_thread().name)
        time.sleep(delay)
        return GridDetector.__call__(self, frame, pre, roi, max_digits)


def test_parallel_detection_workers_keep_order_and_results(tiny_bundle):
    levels = list(range(5, 245, 8))
    det = JitteryDetector(2)
    results = []
    summary = run_pipeline(MemorySource(frames_with_levels(levels), names=[str(v) for v in levels]), "onnxruntime",
                           tiny_bundle, detector=det, workers=3, on_result=results.append)
    assert summary.frames == len(levels)
    assert [r.name for r in results] == [str(v) for v in levels]  # in order despite out-of-order workers
    assert len(det.threads) >= 2 and all(t.startswith("detect-") for t in det.threads)
    for r in results:
        ref = linear_reference(GridDetector(2)(r.frame, None)[1])
        assert np.abs(r.probs - ref).max() < 1e-5


class NumbersSpy(object):
    """Stand-in for preprocess.Numbers that records which thread prepared it (and with what)."""

    indices = []  # (no box may be a number: read_numbers cuts nothing)

    def __init__(self):
        self.prepared = []

    def prepare(self, most=32):
        self.prepared.append((threading.current_thread().name, most))


class NumberDetector(GridDetector):
    def __init__(self, count=2):
        GridDetector.__init__(self, count)
        self.numbers = []

    def __call__(self, frame, pre, roi=None, max_digits=32):
        found = GridDetector.__call__(self, frame, pre, roi, max_digits)
        self.numbers.append(NumbersSpy())
        return namedtuple("Found", "boxes batch numbers")(found.boxes, found.batch, self.numbers[-1])


@pytest.mark.parametrize("workers", [0, 1])
def test_a_detection_thread_prepares_the_number_pieces_ahead(tiny_bundle, workers):
    """With detection in its own thread, each frame's number pieces are made there (the inference
    thread then only picks those it needs); detecting in the inference thread, they are made on
    demand there (nothing to gain from making them all)."""
    det = NumberDetector()
    summary = run_pipeline(MemorySource(frames_with_levels([10, 60, 110, 160])), "onnxruntime", tiny_bundle,
                           detector=det, workers=workers)
    assert summary.frames == 4 and len(det.numbers) == 4
    if workers:
        assert all(spy.prepared == [("detect-0", 32)] for spy in det.numbers)
    else:
        assert all(spy.prepared == [] for spy in det.numbers)


def test_backend_is_used_only_from_the_thread_that_opened_it(tiny_bundle, monkeypatch):
    from edge_runtime.backends.onnxruntime import OnnxRuntimeBackend

    seen = {"activate": set(), "infer": set(), "deactivate": set()}
    for name in seen:
        original = getattr(OnnxRuntimeBackend, name + "_impl")

        def spy(self, *args, _name=name, _original=original):
            seen[_name].add(threading.current_thread().ident)
            return _original(self, *args)

        monkeypatch.setattr(OnnxRuntimeBackend, name + "_impl", spy)
    run_pipeline(MemorySource(frames_with_levels([10, 50, 90, 130] * 3)), "onnxruntime", tiny_bundle,
                 detector=JitteryDetector(3), workers=3)
    assert len(seen["activate"]) == 1 and seen["infer"] == seen["activate"] == seen["deactivate"]
    assert threading.current_thread().ident not in seen["infer"]


def test_reorder_buffer_hands_out_in_order_and_never_deadlocks():
    from edge_runtime.pipeline import ReorderBuffer

    class Item(object):
        def __init__(self, seq):
            self.seq = seq

    stop = threading.Event()
    buf = ReorderBuffer(capacity=2)
    buf.put(Item(2), stop)
    buf.put(Item(1), stop)
    assert buf.get(0.01) is None  # 0 is missing
    buf.put(Item(0), stop)  # full, but the one needed next is always let in
    assert [buf.get().seq for _ in range(3)] == [0, 1, 2]
    buf.close()
    with pytest.raises(Closed):
        buf.get()


def test_pipeline_overhead_leaves_room_for_400_fps(tiny_bundle):
    """With a trivial detector, the threads and hand-overs alone must sustain well over 400 FPS at 640x480."""
    boxes = [(10 + 40 * i, 20, 30, 36) for i in range(6)]
    batch = np.random.RandomState(0).rand(6, 28, 28, 1).astype(np.float32)

    def detector(frame, pre, roi=None, max_digits=32):
        return StandIn(boxes, batch)

    frames = [np.zeros((480, 640, 3), np.uint8)] * 20
    summary = run_pipeline(MemorySource(frames, loops=50), "onnxruntime", tiny_bundle, detector=detector,
                           backend_options={"intra_op_threads": 1})
    assert summary.frames == 1000 and summary.detections == 6000
    assert summary.fps > 600, summary.format()


def test_trained_cnn_reads_synthetic_camera_frames():
    """End to end with the committed trained bundle: 20 synthetic 640x480 frames, ground truth known."""
    import os

    from edge_runtime import manifest as mf

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "bundles", "cnn")
    if not os.path.exists(os.path.join(folder, "manifest.json")):
        pytest.skip("no committed trained bundle at %s yet" % folder)
    synthetic = pytest.importorskip("edge_runtime.synthetic")
    cam = synthetic.SyntheticCamera(640, 480, digits=6, effects="camera", seed=11)
    frames, truths = [], []
    for _ in range(20):
        frames.append(cam.read()[1])
        truths.append(cam.last_truth)
    summary = run_pipeline(MemorySource(frames, truths=truths), "onnxruntime", mf.load(folder))
    assert summary.frames == 20 and summary.truth_digits >= 60
    assert summary.truth_correct / float(summary.truth_digits) >= 0.9, summary.format()


def test_on_demand_capture_waits_for_an_idle_consumer():
    stop = threading.Event()
    channel = FrameChannel(1)
    t0 = time.time()
    assert channel.wait_for_space(stop) is True  # read-ahead: room is enough
    ready = []
    producer = threading.Thread(target=lambda: ready.append((channel.wait_for_space(stop, True), time.time())))
    producer.start()
    time.sleep(0.2)
    assert not ready  # nobody is waiting for a frame yet
    assert channel.get(timeout=0.3) is None  # a consumer waits: the producer is released
    producer.join(2)
    assert ready and ready[0][0] is True and ready[0][1] - t0 >= 0.2


class ReadCountingDetector(GridDetector):
    """Records how many frames the source had handed out when detection started on each frame."""

    def __init__(self, source):
        GridDetector.__init__(self, 1)
        self.source = source
        self.read_when_started = []

    def __call__(self, frame, pre, roi=None, max_digits=32):
        time.sleep(0.03)  # busy long enough for a read-ahead capture thread to read the next frame
        self.read_when_started.append(self.source._i)
        return GridDetector.__call__(self, frame, pre, roi, max_digits)


@pytest.mark.parametrize("live, ahead", [(False, 1), (True, 0)])
def test_a_capture_thread_reads_files_ahead_but_live_frames_on_demand(tiny_bundle, live, ahead):
    source = MemorySource(frames_with_levels([30, 90, 150, 210]), is_live=live)
    source.read_in_worker = False  # a capture thread reads, as for files (read ahead) and cameras
    source.read_ahead = not live
    det = ReadCountingDetector(source)
    run_pipeline(source, "onnxruntime", tiny_bundle, detector=det, smooth_window=0)
    # while frame k (1-based) is being detected, k + ahead frames have been read
    assert det.read_when_started[:3] == [k + ahead for k in (1, 2, 3)], det.read_when_started


class ThreadRecordingSource(MemorySource):
    def __init__(self, levels, is_live=False, fail_at=None):
        MemorySource.__init__(self, frames_with_levels(levels), names=[str(v) for v in levels], is_live=is_live)
        self.threads = set()
        self.fail_at = fail_at

    def read(self):
        self.threads.add(threading.current_thread().name)
        if self.fail_at is not None and self._i == self.fail_at:
            raise IOError("the disk went away")
        return MemorySource.read(self)


@pytest.mark.parametrize("live, workers, reader", [(False, 1, "detect-0"), (False, 0, "infer"), (True, 1, "capture")])
def test_frames_in_memory_are_read_by_the_detecting_thread_live_ones_by_capture(tiny_bundle, live, workers, reader):
    levels = [20, 70, 120, 170, 220]
    source = ThreadRecordingSource(levels, is_live=live)
    results = []
    summary = run_pipeline(source, "onnxruntime", tiny_bundle, detector=GridDetector(1), workers=workers,
                           smooth_window=0, on_result=results.append)
    assert source.threads == {reader}
    assert summary.captured == 5
    if not live:  # lossless and in order (a live source may drop frames for newer ones)
        assert summary.frames == 5 and [r.name for r in results] == [str(v) for v in levels]
        assert [r.index for r in results] == list(range(5))


def test_frames_in_memory_max_frames_skips_and_a_failing_read(tiny_bundle):
    frames = frames_with_levels([20, 70, 120, 170, 220])
    frames.insert(2, np.zeros((0, 0, 3), np.uint8))  # unusable: skipped and counted
    summary = run_pipeline(MemorySource(frames), "onnxruntime", tiny_bundle, detector=GridDetector(1))
    assert (summary.frames, summary.captured, summary.skipped) == (5, 5, 1)
    summary = run_pipeline(MemorySource(frames, loops=None), "onnxruntime", tiny_bundle, detector=GridDetector(1),
                           max_frames=7)
    assert (summary.frames, summary.captured) == (7, 7)
    source = ThreadRecordingSource([20, 70, 120, 170], fail_at=2)
    summary = run_pipeline(source, "onnxruntime", tiny_bundle, detector=GridDetector(1))
    assert summary.frames == 2 and summary.stopped_by == "source failed"
    assert "capture failed" in summary.error and "the disk went away" in summary.error


class PacedCamera(MemorySource):
    """A live source that waits 20 ms for each frame, like a 50 FPS camera."""

    def __init__(self):
        MemorySource.__init__(self, frames_with_levels([30, 90, 150, 210]), is_live=True)

    def read(self):
        time.sleep(0.02)
        self.frame_time = time.perf_counter()
        return MemorySource.read(self)


def test_latency_of_live_frames_starts_when_they_arrive(tiny_bundle):
    summary = run_pipeline(PacedCamera(), "onnxruntime", tiny_bundle, detector=GridDetector(1))
    stages = summary.stages()
    assert summary.frames == 4
    assert stages["capture"]["p50"] >= 15  # waiting for the camera is capture time ...
    assert stages["total"]["p50"] < 15  # ... but not frame latency


def test_workers_zero_detects_in_the_inference_thread(tiny_bundle):
    det = JitteryDetector(2)
    results = []
    levels = [20, 70, 120, 170, 220]
    summary = run_pipeline(MemorySource(frames_with_levels(levels), names=[str(v) for v in levels]), "onnxruntime",
                           tiny_bundle, detector=det, workers=0, on_result=results.append)
    assert summary.frames == 5 and [r.name for r in results] == [str(v) for v in levels]
    assert det.threads == {"infer"}
    for r in results:
        assert np.abs(r.probs - linear_reference(GridDetector(2)(r.frame, None)[1])).max() < 1e-5


def test_gil_interval_is_lowered_only_during_the_run(tiny_bundle):
    import sys

    before = sys.getswitchinterval()
    seen = []
    run_pipeline(MemorySource(frames_with_levels([10, 20])), "onnxruntime", tiny_bundle, detector=GridDetector(1),
                 on_result=lambda r: seen.append(sys.getswitchinterval()))
    assert seen == [pytest.approx(0.0005)] * 2 and sys.getswitchinterval() == before


def test_opencv_uses_one_thread_only_during_the_run(tiny_bundle):
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        seen = []
        run_pipeline(MemorySource(frames_with_levels([10, 20])), "onnxruntime", tiny_bundle, detector=GridDetector(1),
                     on_result=lambda r: seen.append(cv2.getNumThreads()))
        assert seen == [1, 1] and cv2.getNumThreads() == 2
        seen = []
        run_pipeline(MemorySource(frames_with_levels([10])), "onnxruntime", tiny_bundle, detector=GridDetector(1),
                     on_result=lambda r: seen.append(cv2.getNumThreads()), cv2_threads=None)
        assert seen == [2]
    finally:
        cv2.setNumThreads(before)


@pytest.mark.parametrize("options, threads", [(None, 1), ({"intra_op_threads": None}, None),
                                              ({"intra_op_threads": 2}, 2)])
def test_onnxruntime_gets_one_intra_op_thread_unless_asked(tiny_bundle, options, threads):
    """ONNX Runtime's default (a spinning worker per core) would take the core detection needs."""
    pytest.importorskip("onnxruntime")
    frames = [np.zeros((64, 64, 3), np.uint8)] * 2
    summary = run_pipeline(MemorySource(frames), "onnxruntime", tiny_bundle, backend_options=options)
    assert summary.frames == 2
    assert summary.backend_info["intra_op_threads"] == threads


def test_a_number_written_touching_is_read_as_its_digits():
    """The touching "23" of test_preprocess is one box that the fixture cnn doubts (0.88); the backend
    thread reads its pieces in a second batch and keeps them: 2 and 3, not one digit."""
    import os

    from edge_runtime import manifest as mf
    from edge_runtime import preprocess
    from tests.edge_runtime.test_preprocess import _touching_pair

    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "bundles", "cnn")
    frame, boxes = _touching_pair()
    truth = [{"bbox": list(boxes[0]), "digit": 2}, {"bbox": list(boxes[1]), "digit": 3}]
    seen = []

    def read(detector):
        summary = run_pipeline(MemorySource([frame] * 3, truths=[truth] * 3), "onnxruntime", mf.load(folder),
                               detector=detector, on_result=lambda r: seen.append(r))
        return summary.truth_correct

    assert read(preprocess.digits_from_frame) == 6
    assert [d["digit"] for d in seen[-1].detections] == [2, 3] and seen[-1].numbers is None  # (released)

    def without_numbers(*args, **kwargs):
        return preprocess.digits_from_frame(*args, **kwargs)._replace(numbers=None)

    assert read(without_numbers) <= 3  # one box: at most one of its digits right
