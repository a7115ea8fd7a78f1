"""train.keras_baseline: the Keras predict-per-frame and tf.function loops on saved frames."""

import json
import sys

import numpy as np
import pytest

from train import keras_baseline


def save_tiny_keras_model(path):
    """A seeded softmax-regression Keras model (seconds to build, no training)."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(str(path))
    return model


def synthetic_frames(path, count=3):
    from edge_runtime.sources import open_source

    with open_source("synthetic://?seed=5") as source:
        frames = [source.read()[1] for _ in range(count)]
    np.savez(str(path), frames=np.stack(frames))
    return frames


def test_baseline_json(tmp_path):
    pytest.importorskip("tensorflow")
    model = save_tiny_keras_model(tmp_path / "model.keras")
    frames = synthetic_frames(tmp_path / "frames.npz", 3)
    out = tmp_path / "result.json"
    code = keras_baseline.main(["--model", str(tmp_path / "model.keras"), "--frames", str(tmp_path / "frames.npz"),
                                "--out", str(out), "--warmup", "1"])
    assert code == 0
    result = json.loads(out.read_text())
    assert result["frames"] == 3
    for key in ("keras_predict_ms_per_frame", "tf_function_ms_per_frame", "predict_only_ms_per_frame",
                "tf_function_only_ms_per_frame", "preprocess_ms_per_frame", "keras_predict_cpu_ms_per_frame",
                "tf_function_cpu_ms_per_frame"):
        assert result[key] > 0
    assert result["keras_predict_ms_per_frame"] >= result["predict_only_ms_per_frame"]
    # both loops give the same digits, and they are the model's answers on our own preprocessing
    assert result["predict_vs_tf_function_agreement"] == 1.0
    from edge_runtime.manifest import DEFAULT_PREPROCESS
    from edge_runtime.preprocess import digits_from_frame

    found = digits_from_frame(frames[0], DEFAULT_PREPROCESS)
    expected = model.predict(found.batch, verbose=0).argmax(axis=1).tolist() if len(found.boxes) else []
    assert result["digits_per_frame"][0] == expected
    assert result["digits"] == sum(len(d) for d in result["digits_per_frame"]) > 0


def test_missing_tensorflow_is_a_clear_error(tmp_path, monkeypatch, capsys):
    synthetic_frames(tmp_path / "frames.npz", 1)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    code = keras_baseline.main(["--model", str(tmp_path / "model.keras"), "--frames", str(tmp_path / "frames.npz"),
                                "--out", str(tmp_path / "r.json")])
    assert code == keras_baseline.EXIT_NO_TENSORFLOW
    assert "TensorFlow is not installed" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


def test_bad_frames_file(tmp_path, capsys):
    np.savez(str(tmp_path / "f.npz"), other=np.zeros(3))
    code = keras_baseline.main(["--model", "m.keras", "--frames", str(tmp_path / "f.npz"), "--out", "r.json"])
    assert code == 2
    assert "has no `frames` array" in capsys.readouterr().err
