"""Sources: every kind that can run here (files, folders, globs, video, synthetic, fake cameras)."""

import os
import threading
import time

import cv2
import numpy as np
import pytest

from edge_runtime import sources
from edge_runtime.errors import UserError

PLATFORM_CSI = (
    "nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM), width=1280, height=720, framerate=60/1 ! "
    "nvvidconv flip-method=0 ! video/x-raw, width=640, height=360, format=BGRx ! videoconvert ! "
    "video/x-raw, format=BGR ! appsink drop=1 max-buffers=1"
)


def test_csi_pipeline_matches_platform_md():
    assert sources.csi_pipeline(0, 1280, 720, 60, 0, 640, 360) == PLATFORM_CSI


def test_parse_csi_uri_options_and_defaults():
    opts = sources.parse_csi_uri("csi://1?width=1920&height=1080&fps=30&flip=2")
    assert opts == {"sensor_id": 1, "width": 1920, "height": 1080, "fps": 30, "flip": 2}
    assert sources.parse_csi_uri("csi://0")["width"] == 1280
    text = sources.csi_pipeline(**sources.parse_csi_uri("csi://1?width=1920&height=1080&fps=30&flip=2"))
    assert "sensor-id=1" in text and "framerate=30/1" in text and "flip-method=2" in text
    assert "width=1920, height=1080, format=BGRx" in text


@pytest.mark.parametrize("uri", ["csi://x", "csi://0?zoom=2", "csi://0?fps=abc", "csi://0?flip=9"])
def test_parse_csi_uri_rejects_bad_values(uri):
    with pytest.raises(UserError):
        sources.parse_csi_uri(uri)


def test_gstreamer_detection_from_build_information():
    assert sources.cv2_has_gstreamer("  Video I/O:\n    GStreamer:                   YES (1.14.5)\n")
    assert not sources.cv2_has_gstreamer("  Video I/O:\n    GStreamer:                   NO\n")
    assert not sources.cv2_has_gstreamer("nothing here")
    expected = any(line.strip().startswith("GStreamer:") and "YES" in line
                   for line in cv2.getBuildInformation().splitlines())
    assert sources.cv2_has_gstreamer() is expected


def test_csi_without_gstreamer_explains_the_fix(monkeypatch):
    monkeypatch.setattr(sources, "cv2_has_gstreamer", lambda build_info=None: False)
    with pytest.raises(UserError) as err:
        sources.open_source("csi://0")
    msg = str(err.value)
    assert "GStreamer" in msg and "python3-opencv" in msg and "--system-site-packages" in msg


def test_rtsp_pipeline_text():
    text = sources.rtsp_pipeline("rtsp://cam/stream", latency=100)
    assert text.startswith("rtspsrc location=rtsp://cam/stream latency=100 !")
    assert text.endswith("appsink drop=1 max-buffers=1")


def _write_images(folder, count, size=(48, 64)):
    paths = []
    for i in range(count):
        img = np.full(size + (3,), 20 * i, np.uint8)
        path = os.path.join(str(folder), "img_%02d.png" % i)
        cv2.imwrite(path, img)
        paths.append(path)
    return paths


def _read_all(src):
    out = []
    while True:
        ok, frame, name = src.read()
        if not ok:
            return out
        out.append((frame, name))


def test_folder_is_sorted_complete_and_skips_unreadable(tmp_path, caplog):
    _write_images(tmp_path, 5)
    (tmp_path / "img_02b.png").write_bytes(b"not a png at all")
    (tmp_path / "notes.txt").write_text("ignored")
    src = sources.open_source(str(tmp_path))
    assert not src.is_live
    frames = _read_all(src)
    assert [n for _, n in frames] == ["img_00.png", "img_01.png", "img_02.png", "img_03.png", "img_04.png"]
    assert src.skipped == 1 and src.skipped_files[0].endswith("img_02b.png")
    assert "img_02b.png" in caplog.text
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f, _ in frames)
    assert int(frames[3][0][0, 0, 0]) == 60


def test_glob_and_single_image(tmp_path):
    _write_images(tmp_path, 4)
    cv2.imwrite(str(tmp_path / "other.jpg"), np.zeros((10, 10, 3), np.uint8))
    src = sources.open_source(str(tmp_path / "img_*.png"))
    assert [n for _, n in _read_all(src)] == ["img_00.png", "img_01.png", "img_02.png", "img_03.png"]
    one = sources.open_source(str(tmp_path / "other.jpg"))
    frames = _read_all(one)
    assert len(frames) == 1 and frames[0][1] == "other.jpg"


def test_gray_and_bgra_images_become_bgr(tmp_path):
    cv2.imwrite(str(tmp_path / "a_gray.png"), np.full((20, 30), 200, np.uint8))
    cv2.imwrite(str(tmp_path / "b_bgra.png"), np.full((20, 30, 4), 100, np.uint8))
    cv2.imwrite(str(tmp_path / "c_16bit.png"), np.full((20, 30), 65535, np.uint16))
    frames = _read_all(sources.open_source(str(tmp_path)))
    assert [f.shape for f, _ in frames] == [(20, 30, 3)] * 3
    assert [int(f[0, 0, 0]) for f, _ in frames] == [200, 100, 255]


def test_video_file_every_frame_in_order(tmp_path):
    path = str(tmp_path / "clip.avi")
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (64, 48))
    assert writer.isOpened()
    for i in range(12):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    src = sources.open_source(path)
    assert isinstance(src, sources.VideoFileSource) and not src.is_live
    frames = _read_all(src)
    src.close()
    assert [n for _, n in frames] == [str(i) for i in range(12)]
    levels = [int(f.mean()) for f, _ in frames]
    assert all(abs(a - 20 * i) <= 3 for i, a in enumerate(levels))


def test_synthetic_source_is_live_with_truth():
    pytest.importorskip("edge_runtime.synthetic")
    src = sources.open_source("synthetic://?seed=3&width=320&height=240&digits=2&effects=clean")
    ok, frame, name = src.read()
    assert ok and frame.shape == (240, 320, 3) and name == "0"
    assert src.is_live and 1 <= len(src.last_truth) <= 2
    assert all(0 <= t["digit"] <= 9 and len(t["bbox"]) == 4 for t in src.last_truth)
    assert src.read()[2] == "1"
    src.close()


@pytest.mark.parametrize("uri,words", [
    ("ftp://x/y", "unknown source scheme"),
    ("/no/such/file.png", "does not exist"),
    ("/dev/video99", "no camera at /dev/video99"),
    ("synthetic://?digits=abc", "synthetic"),
    ("", "empty --source"),
])
def test_bad_sources_say_what_to_do(uri, words):
    with pytest.raises(UserError) as err:
        sources.open_source(uri)
    assert words in str(err.value)


def test_empty_folder(tmp_path):
    with pytest.raises(UserError) as err:
        sources.open_source(str(tmp_path))
    assert "no images" in str(err.value)


def test_auto_falls_back_to_synthetic(monkeypatch):
    monkeypatch.setattr(sources, "camera_available", lambda: None)
    assert sources.resolve_auto("auto") == "synthetic://"
    monkeypatch.setattr(sources, "camera_available", lambda: "/dev/video0")
    assert sources.resolve_auto("auto") == "/dev/video0"
    assert sources.resolve_auto("clip.mp4") == "clip.mp4"


@pytest.mark.parametrize("frame,shape", [
    (np.zeros((5, 7), np.uint8), (5, 7, 3)),
    (np.zeros((5, 7, 1), np.uint8), (5, 7, 3)),
    (np.zeros((5, 7, 4), np.uint8), (5, 7, 3)),
    (np.ones((5, 7, 3), np.float32), (5, 7, 3)),
    (np.zeros((5, 7, 3), np.uint16), (5, 7, 3)),
])
def test_bgr_frame_normalises(frame, shape):
    out = sources.bgr_frame(frame)
    assert out.shape == shape and out.dtype == np.uint8


@pytest.mark.parametrize("frame", [None, np.zeros((0, 0, 3), np.uint8), np.zeros((5, 7, 2), np.uint8),
                                   np.zeros((2, 2, 2, 2), np.uint8), "not a frame"])
def test_bgr_frame_rejects_unusable(frame):
    assert sources.bgr_frame(frame) is None


class FakeCapture(object):
    """A cv2.VideoCapture stand-in: frames numbered from `start`, failing after `fail_after` reads."""

    def __init__(self, start=0, fail_after=None, delay=0.002, opened=True):
        self.n = start
        self.reads = 0
        self.fail_after = fail_after
        self.delay = delay
        self.opened = opened
        self.released = False

    def isOpened(self):  # noqa: N802
        return self.opened

    def read(self):
        time.sleep(self.delay)
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            return False, None
        self.n += 1
        return True, np.full((4, 4, 3), self.n % 256, np.uint8)

    def release(self):
        self.released = True


def test_capture_keeps_only_newest_frame():
    cap = FakeCapture(delay=0.001)
    src = sources.CaptureSource("fake://", lambda: cap)
    try:
        ok, first, _ = src.read()
        assert ok
        time.sleep(0.1)  # the grab thread keeps grabbing meanwhile
        ok, frame, name = src.read()
        assert ok and int(name) >= 10
        assert src.dropped >= 5  # older frames were replaced, not queued
        assert int(frame[0, 0, 0]) == (int(name) + 1) % 256
    finally:
        src.close()
    assert cap.released


def test_capture_reconnects_after_dropout():
    opened = []

    def open_capture():
        cap = FakeCapture(start=100 * len(opened), fail_after=3 if not opened else None)
        opened.append(cap)
        return cap

    src = sources.CaptureSource("fake://", open_capture, retries=3, backoff_s=0.01)
    try:
        deadline = time.time() + 5
        while src.reconnects < 1 and time.time() < deadline:
            ok, frame, _ = src.read()
            assert ok
        ok, frame, _ = src.read()
        assert ok and int(frame[0, 0, 0]) > 100  # frames from the reopened camera
        assert src.error is None and len(opened) == 2
    finally:
        src.close()


def test_capture_gives_up_with_a_clear_error():
    caps = [FakeCapture(fail_after=2)]

    def open_capture():  # the first camera delivers 2 frames; reopened ones deliver nothing
        if not caps[-1].reads:
            return caps[-1]
        caps.append(FakeCapture(fail_after=0))
        return caps[-1]

    src = sources.CaptureSource("fake://cam", open_capture, retries=2, backoff_s=0.01)
    try:
        results = [src.read()[0] for _ in range(10)]
        assert results[0] is True and results[-1] is False
        assert "stopped delivering frames" in src.error and "2 reconnect attempts" in src.error
        assert len(caps) == 3 and all(c.released for c in caps[:2])
    finally:
        src.close()


def test_capture_that_cannot_open_is_a_user_error():
    with pytest.raises(UserError) as err:
        sources.CaptureSource("/dev/video7", lambda: FakeCapture(opened=False))
    assert "cannot open camera /dev/video7" in str(err.value)


def test_close_stops_the_grab_thread():
    before = threading.active_count()
    src = sources.CaptureSource("fake://", lambda: FakeCapture())
    src.read()
    src.close()
    time.sleep(0.05)
    assert threading.active_count() <= before


def test_synthetic_smoothing_only_when_scenes_are_held():
    pytest.importorskip("edge_runtime.synthetic")
    assert sources.open_source("synthetic://?width=128&height=128").temporal is False
    held = sources.open_source("synthetic://?width=128&height=128&hold=10&fps=15")
    assert held.temporal is True and held.fps == 15.0


def test_live_frames_carry_their_arrival_time():
    src = sources.CaptureSource("fake://", lambda: FakeCapture(delay=0.001))
    try:
        before = time.perf_counter()
        time.sleep(0.05)
        ok, _, _ = src.read()
        assert ok and before < src.frame_time <= time.perf_counter()
    finally:
        src.close()


def test_csi_uri_opens_the_gstreamer_pipeline(monkeypatch):
    opened = []

    def fake_capture(target, api=None):
        opened.append((target, api))
        return FakeCapture()

    monkeypatch.setattr(sources, "cv2_has_gstreamer", lambda build_info=None: True)
    monkeypatch.setattr(cv2, "VideoCapture", fake_capture)
    src = sources.open_source("csi://1?width=1920&height=1080&fps=30&flip=2")
    try:
        ok, frame, _ = src.read()
    finally:
        src.close()
    assert ok and src.is_live
    assert opened[0] == (sources.csi_pipeline(1, 1920, 1080, 30, 2), cv2.CAP_GSTREAMER)


def test_rtsp_uses_gstreamer_when_present_else_ffmpeg(monkeypatch):
    opened = []
    monkeypatch.setattr(cv2, "VideoCapture", lambda target, api=None: opened.append((target, api)) or FakeCapture())
    for has_gst in (True, False):
        monkeypatch.setattr(sources, "cv2_has_gstreamer", lambda build_info=None, v=has_gst: v)
        sources.open_source("rtsp://cam.local:8554/live").close()
    assert opened[0] == (sources.rtsp_pipeline("rtsp://cam.local:8554/live"), cv2.CAP_GSTREAMER)
    assert opened[1] == ("rtsp://cam.local:8554/live", cv2.CAP_FFMPEG)


def test_v4l2_uri_sets_the_requested_mode(monkeypatch, tmp_path):
    fake_dev = tmp_path / "video3"
    fake_dev.write_bytes(b"")
    settings = {}

    class Cap(FakeCapture):
        def set(self, prop, value):
            settings[prop] = value
            return True

    opened = []
    monkeypatch.setattr(cv2, "VideoCapture", lambda target, api=None: opened.append((target, api)) or Cap())
    src = sources.open_source("v4l2://%s?width=640&height=480&fps=30" % fake_dev)
    src.close()
    assert opened[0] == (str(fake_dev), cv2.CAP_V4L2)
    assert settings == {cv2.CAP_PROP_FRAME_WIDTH: 640, cv2.CAP_PROP_FRAME_HEIGHT: 480, cv2.CAP_PROP_FPS: 30}


def test_unreadable_video_is_a_user_error(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(UserError) as err:
        sources.open_source(str(bad))
    assert "cannot open video file" in str(err.value) and "broken.mp4" in str(err.value)
