"""Fixtures for convert tests: a small seeded Keras CNN (built here, never trained) and digits.

The model has random biases and random BatchNormalization statistics so every rewrite in
convert/onnx_from_keras.py (flatten, transpose fold, Gemm, affine fold) has something to change.
Labels are the Keras model's own predictions, so Keras accuracy is 100 % by construction and any
runtime that disagrees loses accuracy.
"""

import os
import shutil

import numpy as np
import pytest


def needs_workstation_stack():
    """Call at the top of each test module: skip when the export stack is not installed."""
    for module in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "cv2"):
        pytest.importorskip(module)

N_DIGITS = 300


def build_small_cnn(seed=0):
    import keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((28, 28, 1), name="image"),
            layers.Conv2D(6, 3, activation="relu", bias_initializer="random_normal"),
            layers.MaxPooling2D(),
            layers.Conv2D(8, 3, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(24, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Dropout(0.25),
            layers.Dense(10, activation="softmax", bias_initializer="random_normal"),
        ],
        name="small_cnn",
    )
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.get_weights()[0].shape[0]
            layer.set_weights([
                (rng.rand(c) + 0.5).astype("float32"), (rng.randn(c) * 0.3).astype("float32"),
                (rng.randn(c) * 0.3).astype("float32"), (rng.rand(c) + 0.5).astype("float32"),
            ])
    return model


def synthetic_digits(n=N_DIGITS, seed=0):
    """uint8 [n,28,28] images: blurred random blobs, white on black."""
    rng = np.random.RandomState(seed)
    images = np.zeros((n, 28, 28), np.float32)
    yy, xx = np.mgrid[0:28, 0:28]
    for i in range(n):
        for _ in range(3):
            cy, cx = rng.uniform(6, 22, size=2)
            sy, sx = rng.uniform(1.5, 5, size=2)
            images[i] += np.exp(-((yy - cy) ** 2 / (2 * sy**2) + (xx - cx) ** 2 / (2 * sx**2)))
    return (np.clip(images, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def small_cnn():
    return build_small_cnn()


@pytest.fixture(scope="session")
def digits(small_cnn):
    """(uint8 images, int64 labels = the Keras model's predictions)."""
    images = synthetic_digits()
    x = images.astype(np.float32)[..., None] / 255.0
    labels = small_cnn.predict(x, verbose=0).argmax(axis=1).astype(np.int64)
    return images, labels


@pytest.fixture(scope="session")
def keras_file(small_cnn, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("keras") / "model.keras")
    small_cnn.save(path)
    return path


@pytest.fixture
def trained_folder(keras_file, tmp_path):
    """A bundle folder as training leaves it: model.keras + metrics.json."""
    folder = tmp_path / "small"
    folder.mkdir()
    shutil.copy(keras_file, str(folder / "model.keras"))
    metrics = '{"name": "small", "params": 4242, "test_accuracy": 0.5, "train_seconds": 12.5}'
    (folder / "metrics.json").write_text(metrics)
    return str(folder)


@pytest.fixture
def fake_digits(monkeypatch, digits):
    """Make `python -m convert verify/all` use the synthetic digits instead of MNIST."""
    import convert.verify

    def load_test_digits(limit=None, data=None):
        images, labels = digits
        return (images[:limit], labels[:limit]) if limit else (images, labels)

    monkeypatch.setattr(convert.verify, "load_test_digits", load_test_digits)
    return digits


def onnx_file(folder, name="model.onnx"):
    return os.path.join(str(folder), name)
