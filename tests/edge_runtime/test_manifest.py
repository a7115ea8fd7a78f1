import json
import os

import pytest

from edge_runtime import manifest as mf


def test_round_trip_and_hashes(tiny_bundle):
    m = mf.load(tiny_bundle["_dir"])
    assert m["schema"] == 1
    assert m["input"]["shape"] == [-1, 28, 28, 1]
    assert len(m["onnx"]["sha256"]) == 64
    assert m["files"]["model.onnx"] == m["onnx"]["sha256"]
    assert mf.input_hw(m) == (28, 28)
    # loading the manifest.json path works as well as the folder
    assert mf.load(os.path.join(m["_dir"], "manifest.json"))["name"] == "tiny"


def test_tampered_file_is_detected(tiny_bundle):
    path = os.path.join(tiny_bundle["_dir"], "model.onnx")
    with open(path, "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02")
    with pytest.raises(mf.ManifestError, match="sha256 mismatch.*model.onnx"):
        mf.load(tiny_bundle["_dir"])


def test_missing_file_and_missing_manifest(tmp_path, tiny_bundle):
    os.remove(os.path.join(tiny_bundle["_dir"], "model.onnx"))
    with pytest.raises(mf.ManifestError, match="missing"):
        mf.load(tiny_bundle["_dir"])
    with pytest.raises(mf.ManifestError, match="make train"):
        mf.load(str(tmp_path / "nowhere"))


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"schema": 2}, "schema 2 is not supported"),
        ({"labels": ["a"]}, "1 labels but the output has 10"),
        ({"onnx": {"file": "model.onnx", "opset": 17}}, "opset 17 is newer"),
    ],
)
def test_schema_errors(tiny_bundle, patch, message):
    path = os.path.join(tiny_bundle["_dir"], "manifest.json")
    with open(path) as handle:
        data = json.load(handle)
    data.update(patch)
    with open(path, "w") as handle:
        json.dump(data, handle)
    with pytest.raises(mf.ManifestError, match=message):
        mf.load(tiny_bundle["_dir"])


def test_invalid_json(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(mf.ManifestError, match="not valid JSON"):
        mf.load(str(tmp_path))


def test_atomic_write_leaves_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "a.json"
    mf.atomic_write_text(str(target), "old")

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        mf.atomic_write_text(str(target), "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp file left behind


def test_atomic_write_gives_normal_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        target = tmp_path / "b.bin"
        mf.atomic_write_bytes(str(target), b"x")
    finally:
        os.umask(old)
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)
