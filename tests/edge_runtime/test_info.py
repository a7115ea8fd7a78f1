"""`edge_runtime info` on this desktop: never crashes, --json parses, fields present."""

import argparse
import json
import sys

import pytest

from edge_runtime import info


def run_info(argv, capsys):
    parser = argparse.ArgumentParser()
    info.add_arguments(parser)
    code = info.run(parser.parse_args(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_json_on_this_desktop(capsys):
    code, out, _ = run_info(["--json"], capsys)
    assert code == 0
    data = json.loads(out)
    env = data["environment"]
    assert env["python"]["version"].count(".") == 2
    assert env["libraries"]["numpy"]
    assert env["libraries"]["opencv"]["gstreamer"] in (True, False)
    names = [row["name"] for row in data["backends"]]
    assert names == ["tensorrt", "onnxruntime", "opencv"]
    for row in data["backends"]:
        assert row["available"] == (not row["missing"])
        assert (row["install"] is None) == row["available"]
    assert next(r for r in data["backends"] if r["name"] == "onnxruntime")["available"] is True
    assert "tensorrt" in data and "jetson" in env


def test_text_lists_missing_backends_with_install_hint(capsys, monkeypatch):
    # pretend TensorRT is absent even on a machine that has it
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    code, out, _ = run_info([], capsys)
    assert code == 0
    line = next(line for line in out.splitlines() if line.strip().startswith("tensorrt") and "missing" in line)
    assert "apt-get install python3-libnvinfer" in line
    assert "opencv:" in out and "GStreamer:" in out
    assert "onnxruntime  available" in out


def test_text_says_whether_the_cpu_has_int8_dot_products(capsys, monkeypatch):
    from edge_runtime import environment

    for flag, words in (("avx512_vnni", "avx512_vnni (ONNX Runtime runs a bundle's INT8 model"),
                        (None, "no int8 dot products (ONNX Runtime runs FP32)")):
        monkeypatch.setattr(environment, "int8_dot_flag", lambda cpuinfo, flag=flag: flag)
        code, out, _ = run_info([], capsys)
        assert code == 0 and "cpu int8:     " + words in out


def test_model_engine_cache_is_reported(tiny_bundle, capsys):
    code, out, _ = run_info(["--json", "--model", tiny_bundle["_dir"]], capsys)
    assert code == 0
    cache = json.loads(out)["engine_cache"]
    assert cache["model"] == tiny_bundle["_dir"]
    # either the engine cache module answered (no engines built for the tiny bundle) or it said why not
    assert cache["engines"] in (None, []) and (cache["engines"] == [] or cache["error"])


def test_bad_model_is_a_clear_error(tmp_path, capsys):
    code, out, err = run_info(["--model", str(tmp_path / "nope")], capsys)
    assert code == 2
    assert "no manifest at" in err and "make train" in err
    assert "backends:" in out  # the rest of the report is still printed


def test_engine_lines():
    line = info._engine_line({"file": "model.abc.engine", "matches": False, "reason": "TensorRT 8.0.1 != 8.2.1"})
    assert line == "model.abc.engine: does not match: TensorRT 8.0.1 != 8.2.1"
    line = info._engine_line({"file": "e.engine", "matches": True, "precision": "fp16", "max_batch": 64})
    assert line == "e.engine: matches this device (precision=fp16, max_batch=64)"


@pytest.mark.parametrize("missing", ["onnxruntime", "cv2"])
def test_info_survives_missing_libraries(missing, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, missing, None)
    code, out, _ = run_info(["--json"], capsys)
    assert code == 0
    json.loads(out)


def test_unknown_match_says_why():
    line = info._engine_line({"file": "m.engine", "matches": None, "reasons": ["cannot check here: no TensorRT"]})
    assert line == "m.engine: match unknown (cannot check here: no TensorRT)"
