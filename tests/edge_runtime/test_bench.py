"""`edge_runtime bench`: argument checks, a short real run per backend on the tiny bundle,
output schemas (JSON, CSV, Markdown, PNG), the TensorRT split path, bad input."""

import argparse
import csv
import json
import os

import cv2
import numpy as np
import pytest

from edge_runtime import bench
from edge_runtime.backends import available_backends
from edge_runtime.backends.base import Backend, BackendError
from edge_runtime.errors import UserError

MODEL_ROW_KEYS = {"backend", "batch", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "images_per_s",
                  "iters"}
LOCAL_BACKENDS = [b for b in ("onnxruntime", "opencv") if b in available_backends()]


def parse(argv):
    parser = argparse.ArgumentParser(prog="edge_runtime bench")
    bench.add_arguments(parser)
    return parser.parse_args(argv)


def few_frames(tmp_path, count=4):
    """A folder of synthetic camera frames (a source that is not live: every frame, in order)."""
    from edge_runtime.sources import open_source

    folder = tmp_path / "frames"
    folder.mkdir()
    with open_source("synthetic://?seed=3") as source:
        for i in range(count):
            ok, frame, _ = source.read()
            assert ok
            cv2.imwrite(str(folder / ("%03d.png" % i)), frame)
    return str(folder)


@pytest.mark.parametrize("argv, words", [
    (["--iters", "0"], "expected a whole number >= 1"),
    (["--iters", "-5"], "expected a whole number >= 1"),
    (["--seconds", "0"], "expected a number > 0"),
    (["--batch", "1,0"], "expected a whole number >= 1"),
    (["--backend", "tensorflow"], "invalid choice"),
    (["--iters", "3", "--seconds", "1"], "not allowed with"),
])
def test_bad_arguments_exit_2_with_a_message(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(["--model", "m"] + argv)
    assert exc.value.code == 2
    assert words in capsys.readouterr().err


def test_batch_list_is_sorted_and_unique():
    assert bench.batch_list("64, 8,1,8") == [1, 8, 64]


def test_short_real_run_of_every_local_backend(tiny_bundle, tmp_path, capsys):
    assert LOCAL_BACKENDS, "onnxruntime or opencv should be installed on the workstation"
    out = tmp_path / "out"
    frames = few_frames(tmp_path, 4)
    args = parse(["--model", tiny_bundle["_dir"], "--batch", "1,4", "--iters", "3", "--warmup", "1",
                  "--source", frames, "--frames", "4", "--out", str(out)])
    assert bench.run(args) == 0
    stdout = capsys.readouterr().out

    result = json.loads((out / "bench.json").read_text())
    assert {"environment", "model", "pipeline"} <= set(result)
    assert result["environment"]["libraries"]["numpy"]
    rows = result["model"]
    assert [(r["backend"], r["batch"]) for r in rows] == [(b, n) for b in LOCAL_BACKENDS for n in (1, 4)]
    for r in rows:
        assert MODEL_ROW_KEYS <= set(r)
        assert r["iters"] == 3
        assert 0 < r["min_ms"] <= r["p50_ms"] <= r["p90_ms"] <= r["p99_ms"]
        assert r["images_per_s"] == pytest.approx(r["batch"] * 1000.0 / r["mean_ms"], rel=1e-3)

    with open(str(out / "bench.csv")) as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(LOCAL_BACKENDS) * 2 * 3
    assert set(table[0]) == {"backend", "batch", "iter", "ms"}
    first = [float(t["ms"]) for t in table if t["backend"] == rows[0]["backend"] and t["batch"] == "1"]
    assert np.median(first) == pytest.approx(rows[0]["p50_ms"], abs=1e-3)

    pipe = result["pipeline"]
    assert pipe["frames"] == 4 and pipe["fps"] > 0 and pipe["cpu_ms_per_frame"] > 0
    assert len(pipe["fps_per_pass"]) == 3 and pipe["fps"] == sorted(pipe["fps_per_pass"])[1]  # median of 3
    assert set(pipe["stage_p50_ms"]) == {"capture", "preprocess", "infer", "output"}
    assert pipe["frame_size"] == [640, 480]
    assert pipe["digits_per_frame"] > 0  # the synthetic frames have digits on them
    assert pipe["from_source"]["frames"] == 4

    assert "| backend | batch | p50 ms |" in stdout and "## Pipeline" in stdout
    assert (out / "bench.md").read_text() == stdout
    png = cv2.imread(str(out / "bench.png"))
    assert png is not None and png.shape == (480, 1200, 3)
    assert (png < 128).any(axis=2).sum() > 2000  # something was drawn


def test_onnxruntime_fp32_and_int8_side_by_side(tmp_path, capsys, monkeypatch):
    """A bundle with a verified INT8 model: the model benchmark times ONNX Runtime at FP32 and at
    INT8 (rows, CSV and table named apart); the pipeline runs what `run` would (auto: INT8 on a CPU
    with int8 dot products, here faked both ways); --ort-precision fp32 times FP32 alone."""
    pytest.importorskip("onnxruntime")
    from edge_runtime import manifest as mf

    bundle = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "bundles", "cnn")
    if "onnx_int8" not in mf.load(bundle):
        pytest.skip("the committed bundle has no model.int8.onnx")
    frames = few_frames(tmp_path, 2)
    for dot, pipeline_precision in (("avx512_vnni", "int8"), (None, "fp32")):
        monkeypatch.setattr("edge_runtime.environment.cpu_int8_dot", lambda root="/", dot=dot: dot)
        monkeypatch.setattr("edge_runtime.backends.onnxruntime.cpu_int8_dot", lambda root="/", dot=dot: dot)
        out = tmp_path / ("out-%s" % pipeline_precision)
        args = parse(["--model", bundle, "--backend", "onnxruntime", "--batch", "8", "--iters", "3", "--warmup", "1",
                      "--source", frames, "--frames", "2", "--repeats", "1", "--out", str(out)])
        assert bench.run(args) == 0
        result = json.loads((out / "bench.json").read_text())
        assert [(r["backend"], r["label"]) for r in result["model"]] == [
            ("onnxruntime", "onnxruntime"), ("onnxruntime", "onnxruntime int8")]
        assert result["pipeline"]["precision"] == pipeline_precision
        stdout = capsys.readouterr().out
        assert "| onnxruntime int8 | 8 |" in stdout and "| onnxruntime | 8 |" in stdout
        assert ("## Pipeline (onnxruntime int8," in stdout) == (pipeline_precision == "int8")
        with open(str(out / "bench.csv")) as handle:
            assert {row["backend"] for row in csv.DictReader(handle)} == {"onnxruntime", "onnxruntime int8"}
    args = parse(["--model", bundle, "--backend", "onnxruntime", "--batch", "8", "--iters", "3", "--warmup", "1",
                  "--no-pipeline", "--ort-precision", "fp32", "--out", str(tmp_path / "fp32")])
    assert bench.run(args) == 0
    assert [r["label"] for r in json.loads((tmp_path / "fp32" / "bench.json").read_text())["model"]] == ["onnxruntime"]


def test_seconds_mode_and_no_pipeline(tiny_bundle, tmp_path):
    args = parse(["--model", tiny_bundle["_dir"], "--backend", LOCAL_BACKENDS[0], "--batch", "2", "--seconds", "0.05",
                  "--warmup", "0", "--no-pipeline", "--out", str(tmp_path)])
    assert bench.run(args) == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["pipeline"] is None
    assert result["model"][0]["iters"] >= 1
    assert result["settings"]["seconds"] == 0.05 and result["settings"]["iters"] is None


class FakeTimedBackend(Backend):
    """Stands in for TensorRT: max batch 8 (an engine profile) and infer_timed with a fixed split."""

    name = "tensorrt"
    max_batch = 8

    def activate_impl(self):
        pass

    def infer_impl(self, batch):
        return np.full((len(batch), 10), 0.1, np.float32)

    def infer_timed(self, batch):
        batch = self.check_batch(batch)
        return self.infer_impl(batch), {"h2d": 0.01, "compute": 0.05 * len(batch), "d2h": 0.005, "end_to_end": 0.2}


def fake_open_backend(manifest, prefer="auto", **options):
    return FakeTimedBackend(manifest)


def test_tensorrt_split_is_reported(tiny_bundle, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("edge_runtime.backends.open_backend", fake_open_backend)
    args = parse(["--model", tiny_bundle["_dir"], "--backend", "tensorrt", "--batch", "1,8", "--iters", "4",
                  "--no-pipeline", "--out", str(tmp_path)])
    assert bench.run(args) == 0
    rows = json.loads((tmp_path / "bench.json").read_text())["model"]
    assert rows[1]["split_ms"]["compute"] == {"mean": 0.4, "p50": 0.4}
    assert rows[0]["split_ms"]["h2d"]["mean"] == 0.01 and rows[0]["split_ms"]["end_to_end"]["p50"] == 0.2
    assert "| tensorrt | 8 | 0.010 | 0.400 | 0.005 | 0.200 |" in capsys.readouterr().out


def test_batch_larger_than_the_engine_profile(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setattr("edge_runtime.backends.open_backend", fake_open_backend)
    args = parse(["--model", tiny_bundle["_dir"], "--backend", "tensorrt", "--batch", "1,16", "--iters", "2",
                  "--no-pipeline", "--out", str(tmp_path)])
    with pytest.raises(UserError, match=r"--batch 16 is larger than the tensorrt backend's maximum batch of 8"):
        bench.run(args)
    assert not (tmp_path / "bench.json").exists()


def test_missing_backend_named_explicitly(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setattr("edge_runtime.backends.missing_modules", lambda name: ["tensorrt"])
    args = parse(["--model", tiny_bundle["_dir"], "--backend", "tensorrt", "--out", str(tmp_path)])
    with pytest.raises(BackendError, match="backend 'tensorrt' is not available"):
        bench.run(args)


def test_unopenable_source(tiny_bundle, tmp_path):
    args = parse(["--model", tiny_bundle["_dir"], "--backend", LOCAL_BACKENDS[0], "--batch", "1", "--iters", "1",
                  "--source", str(tmp_path / "no-such-video.mp4"), "--out", str(tmp_path / "o")])
    with pytest.raises(UserError, match="does not exist"):
        bench.run(args)


def test_compare_keras_without_model_keras(tiny_bundle, tmp_path):
    frames = few_frames(tmp_path, 1)
    args = parse(["--model", tiny_bundle["_dir"], "--backend", LOCAL_BACKENDS[0], "--batch", "1", "--iters", "1",
                  "--source", frames, "--frames", "1", "--compare-keras", "--out", str(tmp_path / "o")])
    with pytest.raises(UserError, match="model.keras, which does not exist"):
        bench.run(args)


def test_baseline_block_speedups():
    block = bench.baseline_block({"frames": 10, "keras_predict_ms_per_frame": 60.0, "tf_function_ms_per_frame": 6.0,
                                  "keras_predict_cpu_ms_per_frame": 90.0, "tf_function_cpu_ms_per_frame": 9.0},
                                 ours_ms_per_frame=1.5, backend="onnxruntime", ours_cpu_ms_per_frame=3.0)
    assert block["cpu_speedup_vs_predict"] == 30.0 and block["cpu_speedup_vs_tf_function"] == 3.0
    assert block["speedup_vs_predict"] == 40.0 and block["speedup_vs_tf_function"] == 4.0
    assert block["keras_predict_fps"] == pytest.approx(16.67) and block["tf_function_fps"] == pytest.approx(166.67)


def test_cli_exit_codes(tiny_bundle, tmp_path, capsys):
    main_module = pytest.importorskip("edge_runtime.__main__")
    try:
        main_module.build_parser()
    except ImportError as exc:  # another subcommand's module is not in this checkout yet
        pytest.skip("edge_runtime CLI incomplete: %s" % exc)
    code = main_module.main(["bench", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path)])
    assert code == 2
    assert "edge_runtime: error: no manifest at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # argparse: usage + message, exit 2
        main_module.main(["bench", "--model", tiny_bundle["_dir"], "--iters", "0"])
    assert exc.value.code == 2
    if "tensorrt" not in available_backends():
        code = main_module.main(["bench", "--model", tiny_bundle["_dir"], "--backend", "tensorrt",
                                 "--out", str(tmp_path)])
        assert code == 2
        assert "backend 'tensorrt' is not available" in capsys.readouterr().err


@pytest.mark.skipif(not os.path.exists(os.path.join(bench.project_root(), "train", "keras_baseline.py")),
                    reason="workstation checkout only")
def test_compare_keras_end_to_end(tiny_bundle, tmp_path):
    pytest.importorskip("tensorflow")
    from tests.train.test_keras_baseline import save_tiny_keras_model

    save_tiny_keras_model(os.path.join(tiny_bundle["_dir"], "model.keras"))
    frames = few_frames(tmp_path, 3)
    args = parse(["--model", tiny_bundle["_dir"], "--backend", LOCAL_BACKENDS[0], "--batch", "1", "--iters", "2",
                  "--source", frames, "--frames", "3", "--compare-keras", "--out", str(tmp_path / "o")])
    assert bench.run(args) == 0
    base = json.loads((tmp_path / "o" / "bench.json").read_text())["baseline"]
    assert base["frames"] == 3
    for key in ("keras_predict_ms_per_frame", "tf_function_ms_per_frame", "speedup_vs_predict",
                "speedup_vs_tf_function"):
        assert base[key] > 0
    assert base["speedup_vs_predict"] == pytest.approx(
        base["keras_predict_ms_per_frame"] / base["pipeline_ms_per_frame"], rel=0.01)
    assert base["cpu_speedup_vs_predict"] == pytest.approx(
        base["keras_predict_cpu_ms_per_frame"] / base["pipeline_cpu_ms_per_frame"], rel=0.01)


def test_serial_pipeline_and_threads(tiny_bundle, tmp_path):
    frames = few_frames(tmp_path, 3)
    args = parse(["--model", tiny_bundle["_dir"], "--backend", LOCAL_BACKENDS[0], "--batch", "1", "--iters", "1",
                  "--threads", "1", "--serial-pipeline", "--repeats", "1", "--source", frames, "--frames", "3",
                  "--out", str(tmp_path / "o")])
    assert bench.run(args) == 0
    result = json.loads((tmp_path / "o" / "bench.json").read_text())
    pipe = result["pipeline"]
    assert pipe["runner"].startswith("bench serial loop") and pipe["frames"] == 3
    # one thread: FPS is exactly frames / sum of the per-frame totals
    assert pipe["fps"] == pytest.approx(1000.0 / pipe["mean_ms"], rel=1e-3)
    assert result["settings"]["threads"] == 1 and result["settings"]["serial_pipeline"] is True


def test_engine_options_reach_the_tensorrt_backend(tiny_bundle, tmp_path):
    from edge_runtime import bench
    from edge_runtime.__main__ import main

    code = main(["bench", "--model", tiny_bundle["_dir"], "--backend", "onnxruntime", "--batch", "1", "--iters", "2",
                 "--warmup", "1", "--no-pipeline", "--engine", "x.engine", "--no-build", "--out", str(tmp_path)])
    assert code == 0
    assert bench.backend_options("tensorrt", 0) == {"engine": "x.engine", "build": False}
    assert bench.backend_options("onnxruntime", 2) == {"intra_op_threads": 2, "precision": "auto"}


@pytest.mark.parametrize("flags, model_threads, pipeline_threads", [([], None, 1), (["--pipeline-threads", "0",
                                                                                      "--threads", "2"], 2, None)])
def test_pipeline_threads_reach_the_pipeline_backend(tiny_bundle, tmp_path, monkeypatch, flags, model_threads,
                                                     pipeline_threads):
    """The pipeline benchmark opens ONNX Runtime with --pipeline-threads (default 1, as `run`), the model
    benchmark with --threads (default: ONNX Runtime's choice)."""
    from edge_runtime import pipeline

    if "onnxruntime" not in LOCAL_BACKENDS:
        pytest.skip("onnxruntime not installed")
    seen = []
    real = pipeline.run_pipeline

    def spy(*args, **kwargs):
        seen.append(kwargs.get("backend_options"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "run_pipeline", spy)
    frames = few_frames(tmp_path, 3)
    args = parse(["--model", tiny_bundle["_dir"], "--backend", "onnxruntime", "--batch", "1", "--iters", "1",
                  "--repeats", "1", "--source", frames, "--frames", "3", "--out", str(tmp_path / "o")] + flags)
    assert bench.run(args) == 0
    settings = json.loads((tmp_path / "o" / "bench.json").read_text())["settings"]
    assert settings["threads"] == model_threads and settings["pipeline_threads"] == pipeline_threads
    expected = {"intra_op_threads": pipeline_threads, "precision": "auto"}  # None: ONNX Runtime's choice
    assert seen and all(options == expected for options in seen)
