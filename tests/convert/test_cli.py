"""`python -m convert` through main([...]): exit codes, messages, files, summary, atomicity."""

import json
import os

import pytest

from tests.convert.conftest import needs_workstation_stack

needs_workstation_stack()

from convert import export as export_mod  # noqa: E402
from convert.__main__ import main  # noqa: E402
from edge_runtime import manifest as mf  # noqa: E402


def test_missing_model_keras_says_make_train(tmp_path, capsys):
    folder = tmp_path / "cnn"
    folder.mkdir()
    assert main(["all", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convert: error:") and "model.keras" in err and "make train" in err
    assert not (folder / "manifest.json").exists()


def test_opset_14_is_refused_by_the_cli(trained_folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", trained_folder, "--opset", "14"])
    assert exit_info.value.code == 2
    assert "TensorRT 8.2" in capsys.readouterr().err


def test_export_then_verify_then_summary(trained_folder, fake_digits, capsys):
    assert main(["-q", "export", trained_folder]) == 0
    manifest = mf.load(trained_folder)
    assert manifest["verified"] is False and manifest["name"] == "small"
    assert manifest["onnx"]["opset"] == 13 and manifest["onnx"]["ir_version"] == 7
    assert set(manifest["created_by"]) >= {"tensorflow", "tf2onnx", "onnx", "onnxruntime", "project"}
    assert manifest["export"]["seconds"] > 0 and manifest["export"]["trt82_problems"] == []
    assert not [n for n in os.listdir(trained_folder) if n.startswith(export_mod.STAGING_PREFIX)]

    assert main(["-q", "verify", trained_folder, "--limit", "120"]) == 0
    out = capsys.readouterr().out
    assert "verified on 120 digits" in out
    assert mf.load(trained_folder)["verified"] is True

    assert main(["summary", trained_folder]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:2] == ["model", "params"]
    row = lines[2]
    assert row.startswith("small") and "4,242" in row and "yes" in row and "12.5" in row
    assert "model.fp16.onnx" in row and "reference.npz" in row
    # aligned: every column starts at the same offset in header and row
    assert lines[0].index("verified") == row.index("yes")


def test_all_verifies_and_prints_the_table(trained_folder, fake_digits, capsys):
    assert main(["-q", "all", trained_folder]) == 0
    out = capsys.readouterr().out
    assert "small: verified on 300 digits" in out
    assert "100.00%/100.00%" in out
    assert mf.load(trained_folder)["metrics"]["test_count"] == 300


def test_verify_failure_exits_1_and_leaves_verified_false(trained_folder, fake_digits, capsys):
    assert main(["-q", "all", trained_folder]) == 0
    capsys.readouterr()
    path = os.path.join(trained_folder, "model.onnx")
    mf.atomic_write_bytes(path, b"broken")
    manifest = mf.load(trained_folder, check_files=False)
    mf.record_file(manifest, "model.onnx")
    mf.save(manifest, trained_folder)
    assert main(["-q", "verify", trained_folder]) == 1
    err = capsys.readouterr().err
    assert "NOT verified" in err and "onnxruntime_fp32 could not run" in err
    assert json.load(open(os.path.join(trained_folder, "manifest.json")))["verified"] is False


def _snapshot(folder):
    return {name: mf.sha256_file(os.path.join(folder, name)) for name in sorted(os.listdir(folder))
            if not name.startswith(".")}


@pytest.mark.parametrize("where", ["fp16", "verify"])
def test_interrupted_export_leaves_previous_bundle_intact(trained_folder, fake_digits, monkeypatch, where):
    assert main(["-q", "all", trained_folder]) == 0
    before = _snapshot(trained_folder)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "fp16":
        monkeypatch.setattr(export_mod, "fp16_from_fp32", interrupt)
    else:
        import convert.verify

        monkeypatch.setattr(convert.verify, "verify_bundle", interrupt)
    assert main(["-q", "all", trained_folder]) == 130
    assert _snapshot(trained_folder) == before
    assert mf.load(trained_folder)["verified"] is True  # still the valid, verified previous bundle
    assert not [n for n in os.listdir(trained_folder) if n.startswith(export_mod.STAGING_PREFIX)]


def test_model_with_ops_the_nano_cannot_run_is_refused_by_name(tmp_path, capsys):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Reshape((28, 28)), keras.layers.LSTM(4),
                              keras.layers.Dense(10, activation="softmax")])
    folder = tmp_path / "lstm"
    folder.mkdir()
    model.save(str(folder / "model.keras"))
    assert main(["-q", "export", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convert: error:") and "LSTM" in err
    assert sorted(os.listdir(str(folder))) == ["model.keras"]
