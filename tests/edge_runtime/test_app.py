"""`python -m edge_runtime run` through main([...]): outputs, bad input, SIGTERM shutdown."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from edge_runtime import app
from edge_runtime.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _digit_images(folder, count=4):
    """White paper with one dark stroke each (something for the detector to find)."""
    for i in range(count):
        img = np.full((120, 160, 3), 255, np.uint8)
        cv2.line(img, (70, 25), (75 + 3 * i, 95), (0, 0, 0), 7)
        cv2.imwrite(os.path.join(str(folder), "scan_%d.png" % i), img)


def test_folder_to_jsonl_and_video(tiny_bundle, tmp_path, capsys, caplog):
    pytest.importorskip("edge_runtime.preprocess")
    images = tmp_path / "scans"
    images.mkdir()
    _digit_images(images)
    (images / "scan_9_broken.png").write_bytes(b"\x89PNG broken")
    jsonl, video = tmp_path / "out.jsonl", tmp_path / "out.mp4"
    rc = main(["run", "--model", tiny_bundle["_dir"], "--source", str(images), "--headless",
               "--jsonl", str(jsonl), "--save", str(video), "--backend", "onnxruntime", "--status-every", "0"])
    out = capsys.readouterr()
    assert rc == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["source"] for r in records] == ["scan_%d.png" % i for i in range(4)]
    assert all(len(r["detections"]) == 1 for r in records), records
    x, y, w, h = records[0]["detections"][0]["bbox"]
    assert 55 <= x <= 75 and 15 <= y <= 30 and w < 40 and 60 <= h <= 90  # the stroke, in frame pixels
    assert "4 frames" in out.out and "skipped 1 unreadable" in out.out and "p90" in out.out
    assert "skipping" in caplog.text and "scan_9_broken.png" in caplog.text
    assert video.exists() and cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT) == 4


def test_manifest_json_path_and_opencv_backend(tiny_bundle, tmp_path, capsys):
    img = tmp_path / "one.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 255, np.uint8))
    rc = main(["run", "--model", os.path.join(tiny_bundle["_dir"], "manifest.json"), "--source", str(img),
               "--headless", "--backend", "opencv", "--jsonl", "-", "--status-every", "0"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert [json.loads(line)["source"] for line in out.splitlines()] == ["one.png"]  # stdout: only JSON lines
    assert json.loads(out)["detections"] == []
    assert "backend opencv" in err


def test_synthetic_max_frames(tiny_bundle, tmp_path, capsys):
    pytest.importorskip("edge_runtime.synthetic")
    jsonl = tmp_path / "s.jsonl"
    rc = main(["run", "--model", tiny_bundle["_dir"], "--source", "synthetic://?seed=2&width=320&height=240",
               "--headless", "--max-frames", "5", "--jsonl", str(jsonl), "--status-every", "0"])
    out = capsys.readouterr().out
    assert rc == 0 and "5 frames" in out and "synthetic ground truth" in out
    frames = [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()]
    assert len(frames) == 5 and frames == sorted(set(frames))  # a live source: newest frame wins


@pytest.mark.parametrize("argv,words", [
    (["--min-confidence", "1.5"], "between 0 and 1"),
    (["--roi", "1,2,3"], "x,y,w,h"),
    (["--serve", "localhost:http"], "HOST:PORT"),
    (["--max-frames", "0"], ">= 1"),
    (["--backend", "tflite"], "invalid choice"),
    (["--smooth", "-1"], ">= 0"),
    (["--polarity", "grey"], "invalid choice"),
])
def test_bad_cli_values(argv, words, capsys):
    with pytest.raises(SystemExit) as err:
        main(["run"] + argv)
    assert err.value.code == 2
    assert words in capsys.readouterr().err


def test_missing_bundle(tmp_path, capsys):
    rc = main(["run", "--model", str(tmp_path / "nothing"), "--source", "synthetic://", "--headless"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("edge_runtime: error: no manifest at") and "make train" in err


def test_hash_mismatch(tiny_bundle, capsys):
    with open(os.path.join(tiny_bundle["_dir"], "model.onnx"), "ab") as fh:
        fh.write(b"x")
    rc = main(["run", "--model", tiny_bundle["_dir"], "--source", "synthetic://", "--headless"])
    err = capsys.readouterr().err
    assert rc == 2 and "sha256 mismatch" in err and "Traceback" not in err


def test_unknown_source(tiny_bundle, capsys):
    rc = main(["run", "--model", tiny_bundle["_dir"], "--source", "/nope/x.mp4", "--headless"])
    assert rc == 2 and "does not exist" in capsys.readouterr().err


def test_unavailable_backend_names_alternatives(tiny_bundle, capsys):
    rc = main(["run", "--model", tiny_bundle["_dir"], "--source", "synthetic://", "--headless",
               "--backend", "tensorrt", "--max-frames", "1"])
    err = capsys.readouterr().err
    if rc == 0:
        pytest.skip("TensorRT is available here")
    assert rc == 2 and "tensorrt" in err and "onnxruntime" in err


def test_port_in_use(tiny_bundle, capsys):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    port = sock.getsockname()[1]
    try:
        rc = main(["run", "--model", tiny_bundle["_dir"], "--source", "synthetic://", "--headless",
                   "--serve", "127.0.0.1:%d" % port, "--max-frames", "1"])
    finally:
        sock.close()
    err = capsys.readouterr().err
    assert rc == 2 and ("port %d" % port) in err and "--serve" in err


def test_headless_without_outputs_serves_mjpeg_by_default(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    parser = __import__("argparse").ArgumentParser()
    app.add_arguments(parser)
    args = parser.parse_args([])
    outs = app.build_outputs(args, None, show_window=False, auto_serve=True)
    kinds = [type(o).__name__ for o in outs]
    assert kinds == ["MjpegOutput", "ConsoleOutput"] and outs[0].port == 8080 and outs[0].host == "127.0.0.1"


def test_sigterm_stops_cleanly_with_summary_and_complete_jsonl(tiny_bundle, tmp_path):
    pytest.importorskip("edge_runtime.synthetic")
    jsonl = tmp_path / "live.jsonl"
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("DISPLAY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime", "run", "--model", tiny_bundle["_dir"],
         "--source", "synthetic://?width=320&height=240&fps=30", "--headless", "--jsonl", str(jsonl)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (not jsonl.exists() or len(jsonl.read_text().splitlines()) < 3):
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "summary:" in out and "stopped: stop requested" in out and "p50" in out
    lines = jsonl.read_text().splitlines()
    assert len(lines) >= 3 and jsonl.read_text().endswith("\n")
    frames = [json.loads(line)["frame"] for line in lines]  # every line is complete JSON
    assert frames == sorted(frames)
    n = int(out.split("summary: ")[1].split(" frames")[0])
    assert n == len(lines)
    assert "Traceback" not in err


def test_camera_that_drops_out_ends_with_a_clear_error(tiny_bundle, monkeypatch, capsys):
    from edge_runtime import sources
    from tests.edge_runtime.test_sources import FakeCapture

    def open_source(uri):
        caps = [FakeCapture(fail_after=3)]

        def open_capture():
            if not caps[-1].reads:
                return caps[-1]
            caps.append(FakeCapture(fail_after=0))
            return caps[-1]

        return sources.CaptureSource(uri, open_capture, retries=2, backoff_s=0.01)

    monkeypatch.setattr(sources, "open_source", open_source)
    rc = main(["run", "--model", tiny_bundle["_dir"], "--source", "/dev/video0", "--headless",
               "--status-every", "0", "--smooth", "0"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert "summary:" in out and "stopped: source failed" in out
    assert "stopped delivering frames" in err and "check the camera connection" in err


def test_display_without_gui_support_runs_headless(tiny_bundle, tmp_path, monkeypatch, capsys, caplog):
    from edge_runtime import outputs

    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(outputs, "cv2_has_gui", lambda build_info=None: False)
    img = tmp_path / "one.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 255, np.uint8))
    rc = main(["run", "--model", tiny_bundle["_dir"], "--source", str(img), "--status-every", "0",
               "--jsonl", str(tmp_path / "o.jsonl")])
    assert rc == 0 and "no GUI" in caplog.text and "1 frames" in capsys.readouterr().out


def test_automatic_server_moves_to_a_free_port(tiny_bundle, monkeypatch, capsys):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    busy = sock.getsockname()[1]
    monkeypatch.setattr(app, "DEFAULT_SERVE", "127.0.0.1:%d" % busy)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    from edge_runtime import pipeline

    original = pipeline.run_pipeline

    def run_for_a_second(*args, **kwargs):
        __import__("threading").Timer(1.0, kwargs["stop_event"].set).start()
        return original(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run_pipeline", run_for_a_second)
    try:
        rc = main(["run", "--model", tiny_bundle["_dir"], "--source", "synthetic://?width=160&height=120&fps=20",
                   "--status-every", "0"])
    finally:
        sock.close()
    out, err = capsys.readouterr()
    served = [line for line in err.splitlines() if "serving http://127.0.0.1:" in line]
    assert rc == 0 and served and (":%d/" % busy) not in served[0]
    assert "stopped: stop requested" in out


def test_killed_run_leaves_complete_jsonl_lines(tiny_bundle, tmp_path):
    pytest.importorskip("edge_runtime.synthetic")
    jsonl = tmp_path / "killed.jsonl"
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_runtime", "run", "--model", tiny_bundle["_dir"], "--source",
         "synthetic://?width=320&height=240", "--headless", "--jsonl", str(jsonl), "--status-every", "0"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and (not jsonl.exists() or len(jsonl.read_bytes().splitlines()) < 5):
            time.sleep(0.05)
    finally:
        proc.kill()
        proc.wait(10)
    text = jsonl.read_text()
    lines = text.splitlines()
    assert len(lines) >= 5 and text.endswith("\n")  # no half-written last line
    assert all(set(json.loads(line)) >= {"frame", "source", "detections", "timing_ms"} for line in lines)


def test_engine_options_reach_the_tensorrt_backend():
    from edge_runtime import app
    from edge_runtime.__main__ import build_parser

    parse = build_parser().parse_args
    args = parse(["run", "--model", "m", "--backend", "tensorrt", "--engine", "e.engine", "--no-build"])
    assert app.backend_options(args) == {"engine": "e.engine", "build": False}
    auto = app.backend_options(parse(["run", "--model", "m", "--threads", "2"]))
    assert auto["engine"] is None and auto["build"] is True and auto["intra_op_threads"] == 2
    assert "engine" not in app.backend_options(parse(["run", "--model", "m", "--backend", "onnxruntime"]))


def test_a_folder_of_mnist_pngs_is_read_digit_by_digit(tmp_path, capsys):
    """The first thing people try: MNIST's own 28x28 images as PNG files (white on black), read by the
    fixture `cnn` bundle through the CLI, one digit per file."""
    from edge_runtime.synthetic import SAMPLE_FILE

    with np.load(SAMPLE_FILE) as data:
        images, labels = data["images"][:60], data["labels"][:60]
    folder = tmp_path / "mnist"
    folder.mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(folder / ("%03d.png" % i)), image)
    jsonl = tmp_path / "out.jsonl"
    bundle = os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn")
    rc = main(["run", "--model", bundle, "--source", str(folder), "--headless", "--jsonl", str(jsonl),
               "--backend", "onnxruntime", "--status-every", "0"])
    capsys.readouterr()
    assert rc == 0
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [r["source"] for r in records] == ["%03d.png" % i for i in range(60)]
    assert all(len(r["detections"]) == 1 for r in records)
    right = sum(r["detections"][0]["digit"] == int(label) for r, label in zip(records, labels, strict=True))
    assert right >= 58  # (measured 60 of 60; no digit was found in them before the close-up look)


def test_polarity_option_reaches_the_detector(tmp_path, capsys):
    """``--polarity`` fixes what the detector takes for ink: white digits on a dark board are found
    and read with ``light`` (and ``auto``); with ``dark`` the dark gaps between their strokes are
    taken for ink, and few are read."""
    from edge_runtime.scenes import match_detections
    from edge_runtime.synthetic import SyntheticCamera

    camera = SyntheticCamera(seed=3, effects="clean")
    folder = tmp_path / "board"
    folder.mkdir()
    truths = []
    for i in range(4):
        frame, truth = camera.render(i)
        cv2.imwrite(str(folder / ("%d.png" % i)), 255 - frame)
        truths.append(truth)
    bundle = os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn")

    def read(polarity):
        jsonl = tmp_path / ("%s.jsonl" % polarity)
        rc = main(["run", "--model", bundle, "--source", str(folder), "--headless", "--jsonl", str(jsonl),
                   "--backend", "onnxruntime", "--status-every", "0", "--polarity", polarity])
        capsys.readouterr()
        assert rc == 0
        records = [json.loads(line) for line in jsonl.read_text().splitlines()]
        return sum(match_detections(r["detections"], truth).correct for r, truth in zip(records, truths, strict=True))

    digits = sum(len(truth) for truth in truths)
    assert read("light") >= digits - 1 and read("auto") >= digits - 1  # (measured 18 of 18 both)
    assert read("dark") <= digits // 4  # (measured 2)
