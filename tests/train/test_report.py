"""Report helpers: confusion matrix, loss, worst errors, PNGs, the camera-normalisation input."""

import os

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from train import report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _probs(labels, n=10, confidence=0.9):
    probs = np.full((len(labels), n), (1 - confidence) / (n - 1), np.float32)
    probs[np.arange(len(labels)), labels] = confidence
    return probs


def test_metrics_from_predictions_counts_and_per_class():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2, 3])
    y_pred = np.array([0, 1, 1, 1, 2, 2, 0, 3])
    metrics = report.metrics_from_predictions(_probs(y_pred), y_true)
    assert metrics["test_accuracy"] == pytest.approx(6 / 8)
    assert metrics["test_errors"] == 2
    matrix = np.array(metrics["confusion_matrix"])
    assert matrix.sum() == 8 and matrix[0, 1] == 1 and matrix[2, 0] == 1 and np.trace(matrix) == 6
    assert metrics["per_class_accuracy"]["2"] == pytest.approx(2 / 3)
    assert metrics["per_class_accuracy"]["9"] == 0.0  # absent class: no division by zero
    assert metrics["test_loss"] == pytest.approx(-(6 * np.log(0.9) + 2 * np.log(0.1 / 9)) / 8, rel=1e-5)


def test_worst_errors_are_most_confidently_wrong_first():
    y_true = np.array([1, 2, 3, 4])
    probs = np.full((4, 10), 0.0, np.float32)
    probs[0, 1] = 1.0  # right
    probs[1, [2, 5]] = [0.4, 0.6]  # wrong, true class at 0.4
    probs[2, [3, 5]] = [0.05, 0.95]  # wrong, true class at 0.05: the worst
    probs[3, [4, 5]] = [0.2, 0.8]
    assert report.worst_errors(y_true, probs).tolist() == [2, 3, 1]


def test_figures_are_pngs(tmp_path):
    history = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "accuracy": 0.9, "val_accuracy": 0.92}
               for e in (1, 2, 3)]
    rng = np.random.RandomState(0)
    x = rng.randint(0, 256, (30, 28, 28)).astype(np.uint8)
    y = rng.randint(0, 10, 30)
    probs = _probs(rng.randint(0, 10, 30))
    report.write_curves(history, str(tmp_path / "curves.png"), "t")
    report.write_confusion(report.confusion_matrix(y, probs.argmax(1)), str(tmp_path / "confusion.png"), "t")
    report.write_misclassified(x, y, probs, str(tmp_path / "mis.png"), "t")
    for name in ("curves.png", "confusion.png", "mis.png"):
        with open(str(tmp_path / name), "rb") as handle:
            assert handle.read(8) == PNG_MAGIC
        assert os.path.getsize(str(tmp_path / name)) > 5000


def test_camera_normalised_keeps_mnist_digits_and_rescales_enlarged_ones():
    pytest.importorskip("edge_runtime.preprocess")
    from train import data

    digits = data.load_mnist().x_test[:50]
    same = report.camera_normalised(digits)
    assert same.shape == (50, 28, 28, 1) and same.dtype == np.float32
    assert np.abs(same[..., 0] - digits / 255.0).mean() < 0.01  # MNIST digits are already normalised
    enlarged = report.camera_normalised(digits, upscale=3)
    assert enlarged.shape == (50, 28, 28, 1)
    # back at MNIST scale: the ink overlaps the original digit (measured 0.68; the same digits shifted
    # by 2 px overlap 0.48, by 3 px 0.32)
    overlap = np.minimum(enlarged[..., 0], digits / 255.0).sum() / (digits / 255.0).sum()
    assert overlap > 0.6
