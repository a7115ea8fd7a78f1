"""Outputs: the JSONL contract, atomic annotated video, MJPEG over HTTP (urllib), overlay."""

import json
import os
import socket
import threading
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest

from edge_runtime import outputs
from edge_runtime.errors import UserError
from edge_runtime.pipeline import run_pipeline
from edge_runtime.sources import MemorySource
from tests.edge_runtime.test_pipeline import GridDetector, frames_with_levels


def _run(bundle, outs, n=4, loops=1, **kw):
    frames = frames_with_levels([30 + 40 * i for i in range(n)], shape=(120, 200, 3))
    src = MemorySource(frames, loops=loops, names=["f%d.png" % i for i in range(n)])
    for o in outs:
        o.open()
    try:
        return run_pipeline(src, "onnxruntime", bundle, outputs=outs, detector=GridDetector(3), **kw)
    finally:
        for o in outs:
            o.close()


def test_jsonl_contract(tiny_bundle, tmp_path):
    path = str(tmp_path / "sub" / "out.jsonl")
    summary = _run(tiny_bundle, [outputs.JsonlOutput(path)], min_confidence=0.99)
    lines = open(path).read().splitlines()
    assert len(lines) == summary.frames == 4
    for i, line in enumerate(lines):
        rec = json.loads(line)
        assert list(rec) == ["frame", "source", "detections", "timing_ms"]
        assert rec["frame"] == i and rec["source"] == "f%d.png" % i
        assert set(rec["timing_ms"]) == {"capture", "preprocess", "infer", "output", "total"}
        assert all(isinstance(v, float) and v >= 0 for v in rec["timing_ms"].values())
        t = rec["timing_ms"]
        assert t["total"] + 1e-3 >= t["preprocess"] + t["infer"]
        assert [d["bbox"] for d in rec["detections"]] == [[10, 20, 30, 36], [50, 20, 30, 36], [90, 20, 30, 36]]
        for d in rec["detections"]:
            assert set(d) == {"bbox", "digit", "confidence", "low_confidence"}
            assert isinstance(d["digit"], int) and 0 <= d["digit"] <= 9
            assert isinstance(d["confidence"], float) and 0 < d["confidence"] <= 1
            assert d["low_confidence"] is (d["confidence"] < 0.99)
            x, y, w, h = d["bbox"]
            assert x + w <= 200 and y + h <= 120


def test_jsonl_lines_are_flushed_as_written(tiny_bundle, tmp_path):
    path = str(tmp_path / "live.jsonl")
    seen = []

    def peek(result):  # called after the JSONL output wrote this frame
        seen.append(len(open(path).read().splitlines()))

    out = outputs.JsonlOutput(path)
    out.open()
    try:
        run_pipeline(MemorySource(frames_with_levels([10, 20, 30])), "onnxruntime", tiny_bundle,
                     outputs=[out], detector=GridDetector(1), on_result=peek)
    finally:
        out.close()
    assert seen == [1, 2, 3]


def test_video_is_written_atomically(tiny_bundle, tmp_path):
    path = str(tmp_path / "out.mp4")
    video = outputs.VideoOutput(path, fps=10)
    states = []
    video.open()
    run_pipeline(MemorySource(frames_with_levels([30, 90, 150, 210, 250])), "onnxruntime", tiny_bundle,
                 outputs=[video], detector=GridDetector(2),
                 on_result=lambda r: states.append((os.path.exists(path), os.path.exists(video.tmp_path))))
    assert states and all(s == (False, True) for s in states)  # only the temp file while recording
    video.close()
    assert os.path.exists(path) and not os.path.exists(video.tmp_path)
    cap = cv2.VideoCapture(path)
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 5 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 120 * 0 + 160


def test_video_bad_extension(tmp_path):
    with pytest.raises(UserError):
        outputs.VideoOutput(str(tmp_path / "out.txt")).open()


def test_annotate_draws_boxes_and_status(tiny_bundle):
    results = []
    _run(tiny_bundle, [], n=1, on_result=results.append)
    r = results[0]
    img = outputs.annotate(r.frame, r, {"fps": 12.5})
    assert img.shape == r.frame.shape and not np.array_equal(img, r.frame)
    assert np.array_equal(r.frame, np.full_like(r.frame, 30))  # the original frame is untouched
    x, y, w, h = r.detections[0]["bbox"]
    edge = img[y + h // 2, x]
    assert tuple(int(v) for v in edge) in (outputs.GREEN, outputs.ORANGE)
    assert "FPS 12.5" in outputs.status_line({"fps": 12.5}, r.timings, 3)


def _get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.headers.get("Content-Type"), resp.read()


def _read_parts(url, count, timeout=10):
    """The first `count` JPEGs of a multipart/x-mixed-replace stream."""
    resp = urllib.request.urlopen(url, timeout=timeout)
    assert resp.headers.get("Content-Type") == "multipart/x-mixed-replace; boundary=frame"
    parts = []
    try:
        while len(parts) < count:
            line = resp.readline()
            if not line:
                break
            if line.strip() != b"--frame":
                continue
            headers = {}
            while True:
                h = resp.readline().strip()
                if not h:
                    break
                k, v = h.split(b":", 1)
                headers[k.strip().lower()] = v.strip()
            assert headers[b"content-type"] == b"image/jpeg"
            parts.append(resp.read(int(headers[b"content-length"])))
    finally:
        resp.close()
    return parts


def test_mjpeg_page_stats_and_stream(tiny_bundle):
    server = outputs.MjpegOutput("127.0.0.1", 0)
    server.open()
    stop = threading.Event()
    try:
        frames = frames_with_levels([60, 120, 180], shape=(120, 200, 3))
        src = MemorySource(frames, loops=None, is_live=True)
        worker = threading.Thread(target=run_pipeline, args=(src, "onnxruntime", tiny_bundle),
                                  kwargs={"outputs": [server], "detector": GridDetector(2), "stop_event": stop})
        worker.start()
        status, ctype, body = _get(server.url)
        assert status == 200 and ctype.startswith("text/html")
        assert b'src="/stream.mjpg"' in body and b"/stats.json" in body
        parts = _read_parts(server.url + "stream.mjpg", 3)
        assert len(parts) == 3
        for jpeg in parts:
            img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert img.shape == (120, 200, 3)
        status, ctype, body = _get(server.url + "stats.json")
        stats = json.loads(body.decode("utf-8"))
        assert ctype == "application/json"
        assert stats["frames"] >= 3 and stats["frames_sent"] >= 3 and stats["fps"] > 0
        assert len(stats["detections"]) == 2 and stats["detections"][0]["bbox"] == [10, 20, 30, 36]
        assert set(stats["timing_ms"]) >= {"capture", "preprocess", "infer", "output", "total"}
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(server.url + "nope")
        assert err.value.code == 404
    finally:
        stop.set()
        worker.join(5)
        server.close()
    assert not worker.is_alive()


def test_two_stream_clients_each_get_frames(tiny_bundle):
    server = outputs.MjpegOutput("127.0.0.1", 0).open()
    stop = threading.Event()
    src = MemorySource(frames_with_levels([60, 120]), loops=None, is_live=True)
    worker = threading.Thread(target=run_pipeline, args=(src, "onnxruntime", tiny_bundle),
                              kwargs={"outputs": [server], "detector": GridDetector(1), "stop_event": stop})
    worker.start()
    got = []
    try:
        readers = [threading.Thread(target=lambda: got.append(len(_read_parts(server.url + "stream.mjpg", 2))))
                   for _ in range(2)]
        for t in readers:
            t.start()
        for t in readers:
            t.join(10)
    finally:
        stop.set()
        worker.join(5)
        server.close()
    assert got == [2, 2]


def test_port_in_use_is_a_clear_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    try:
        with pytest.raises(UserError) as err:
            outputs.MjpegOutput("127.0.0.1", port).open()
    finally:
        sock.close()
    msg = str(err.value)
    assert "port %d" % port in msg and "already in use" in msg and "--serve 127.0.0.1:%d" % (port + 1) in msg


def test_server_close_ends_open_streams(tiny_bundle):
    server = outputs.MjpegOutput("127.0.0.1", 0).open()
    resp = urllib.request.urlopen(server.url + "stream.mjpg", timeout=5)
    server.close()
    assert resp.read() == b""  # the connection ends instead of hanging


@pytest.mark.parametrize("text,expected", [
    ("127.0.0.1:8080", ("127.0.0.1", 8080)), (":9000", ("127.0.0.1", 9000)), ("8081", ("127.0.0.1", 8081)),
    ("0.0.0.0:80", ("0.0.0.0", 80)), ("[::1]:8080", ("::1", 8080)),
])
def test_parse_host_port(text, expected):
    assert outputs.parse_host_port(text) == expected


@pytest.mark.parametrize("text", ["localhost:http", "127.0.0.1:70000", "a:b:c"])
def test_parse_host_port_rejects(text):
    with pytest.raises(ValueError):
        outputs.parse_host_port(text)


def test_console_status_line(tiny_bundle):
    import io

    stream = io.StringIO()
    _run(tiny_bundle, [outputs.ConsoleOutput(interval_s=0, stream=stream)], n=3, min_confidence=0.0)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and lines[0].startswith("frame 0: ") and "FPS" in lines[0]
    assert len(lines[0].split("(")[0].split(":")[1].split()) == 3


def test_gui_detection_from_build_information():
    assert outputs.cv2_has_gui("  GUI:                           GTK3\n")
    assert not outputs.cv2_has_gui("  GUI:                           NONE\n")
    expected = not any(line.strip().startswith("GUI:") and line.strip().endswith("NONE")
                       for line in cv2.getBuildInformation().splitlines())
    assert outputs.cv2_has_gui() is expected
