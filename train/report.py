"""Reports for a trained model in ``artifacts/<model>/``: metrics.json and three PNGs (matplotlib Agg).

metrics.json: test accuracy and loss, per-class accuracy, confusion matrix, params, FLOPs, train
time, epochs, seed, config hash, package versions, and the camera-normalisation check (the test
digits re-normalised by ``edge_runtime.preprocess.normalize_digit``, the function the camera uses).
"""

import io
import logging
import os
import platform

import numpy as np

from edge_runtime.manifest import DEFAULT_PREPROCESS, atomic_write_bytes, atomic_write_json

from . import data as mnist_data
from . import models as zoo

log = logging.getLogger(__name__)

CURVES_PNG = "curves.png"
CONFUSION_PNG = "confusion.png"
MISCLASSIFIED_PNG = "misclassified.png"
WORST_SHOWN = 40
IMAGE_SIZE_PX = 28


def predict_probabilities(model, x_uint8, batch_size=1000):
    return np.asarray(model.predict(mnist_data.as_model_input(x_uint8), batch_size=batch_size, verbose=0))


def confusion_matrix(y_true, y_pred, n=zoo.NUM_CLASSES):
    matrix = np.zeros((n, n), np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def cross_entropy(probs, y_true):
    picked = probs[np.arange(len(y_true)), y_true]
    return float(-np.mean(np.log(np.clip(picked, 1e-12, 1.0))))


def camera_normalised(x_uint8, pre=None, upscale=1):
    """The digits passed through the camera path's normalisation, uint8 [N, 28, 28] -> float32 [N, 28, 28, 1].

    ``upscale`` > 1 first enlarges each digit (as a camera crop of a digit seen at 28 * upscale
    pixels), so normalize_digit's resize-into-20x20 path is exercised too. Returns None when
    ``edge_runtime.preprocess`` is not available.
    """
    try:
        from edge_runtime.preprocess import normalize_digit
    except ImportError as exc:  # the runtime side may be absent in a partial checkout
        log.warning("camera-normalisation check skipped: %s", exc)
        return None
    import cv2

    pre = dict(pre or DEFAULT_PREPROCESS)
    size = IMAGE_SIZE_PX * upscale

    def crop(digit):
        if upscale == 1:
            return digit
        return cv2.resize(digit, (size, size), interpolation=cv2.INTER_CUBIC)

    return np.stack([normalize_digit(crop(digit), pre) for digit in x_uint8]).astype(np.float32)[..., None]


def camera_norm_check(model, x_uint8, y_true, test_accuracy):
    """Test accuracy after ``normalize_digit`` on the digits as they are and enlarged 3x."""
    result = {"available": False}
    for upscale, key in ((1, "accuracy"), (3, "accuracy_upscaled_3x")):
        normalised = camera_normalised(x_uint8, upscale=upscale)
        if normalised is None:
            return result
        probs = np.asarray(model.predict(normalised, batch_size=1000, verbose=0))
        result[key] = float(np.mean(probs.argmax(1) == y_true))
        result["mean_abs_pixel_change" + key[len("accuracy"):]] = float(
            np.mean(np.abs(normalised[..., 0] - x_uint8 / 255.0))
        )
    result.update(
        available=True,
        function="edge_runtime.preprocess.normalize_digit",
        preprocess=dict(DEFAULT_PREPROCESS),
        delta_vs_test=result["accuracy"] - test_accuracy,
        delta_upscaled_3x_vs_test=result["accuracy_upscaled_3x"] - test_accuracy,
    )
    return result


def package_versions():
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for name in ("tensorflow", "keras", "matplotlib"):
        try:
            module = __import__(name)
            versions[name] = getattr(module, "__version__", "?")
        except ImportError:
            pass
    return versions


def metrics_from_predictions(probs, y_true):
    y_pred = probs.argmax(1)
    matrix = confusion_matrix(y_true, y_pred)
    per_class = matrix.diagonal() / np.maximum(matrix.sum(1), 1)
    return {
        "test_accuracy": float(np.mean(y_pred == y_true)),
        "test_loss": cross_entropy(probs, y_true),
        "test_errors": int(np.sum(y_pred != y_true)),
        "test_size": int(len(y_true)),
        "per_class_accuracy": {str(i): float(a) for i, a in enumerate(per_class)},
        "confusion_matrix": matrix.tolist(),
    }


def write_reports(model, splits, bundle, config, digest, state):
    """Evaluate on the test split and write metrics.json, curves.png, confusion.png, misclassified.png."""
    probs = predict_probabilities(model, splits.x_test)
    metrics = {"model": config.model}
    metrics.update(metrics_from_predictions(probs, splits.y_test))
    metrics.update(zoo.describe(model))
    best = state["history"][state["best_epoch"] - 1] if state["history"] else {}
    metrics.update(
        val_accuracy=best.get("val_accuracy"),
        val_loss=best.get("val_loss"),
        epochs=state["epochs_done"],
        best_epoch=state["best_epoch"],
        train_seconds=round(state["train_seconds"], 1),
        seed=config.seed,
        config=config._asdict(),
        config_hash=digest,
        data_source=splits.source,
        train_size=int(len(splits.x_train)),
        versions=package_versions(),
    )
    check = camera_norm_check(model, splits.x_test, splits.y_test, metrics["test_accuracy"])
    metrics["camera_norm_check"] = check
    metrics["camera_norm_accuracy"] = check.get("accuracy")
    metrics["camera_norm_3x_accuracy"] = check.get("accuracy_upscaled_3x")
    write_curves(state["history"], os.path.join(bundle, CURVES_PNG), config.model)
    write_confusion(np.array(metrics["confusion_matrix"]), os.path.join(bundle, CONFUSION_PNG), config.model)
    write_misclassified(splits.x_test, splits.y_test, probs, os.path.join(bundle, MISCLASSIFIED_PNG), config.model)
    atomic_write_json(os.path.join(bundle, "metrics.json"), metrics)  # last: marks the bundle complete
    return metrics


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path):
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def write_curves(history, path, title):
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        ax_loss.plot(epochs, [row.get(key) for row in history], marker="o", label=label)
    for key, label in (("accuracy", "train"), ("val_accuracy", "validation")):
        ax_acc.plot(epochs, [100 * row.get(key, 0) for row in history], marker="o", label=label)
    ax_loss.set(title="%s: loss" % title, xlabel="epoch", ylabel="cross-entropy")
    ax_acc.set(title="%s: accuracy (train is on augmented digits)" % title, xlabel="epoch", ylabel="accuracy %")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    _save_figure(fig, path)


def write_confusion(matrix, path, title):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    image = ax.imshow(off_diagonal, cmap="Reds")
    fig.colorbar(image, ax=ax, label="errors (diagonal not coloured)")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                        color="black" if i != j else "navy", weight="bold" if i == j else "normal")
    ax.set(xticks=range(10), yticks=range(10), xlabel="predicted", ylabel="true",
           title="%s: confusion matrix (%d errors / %d)" % (title, off_diagonal.sum(), matrix.sum()))
    _save_figure(fig, path)


def worst_errors(y_true, probs, limit=WORST_SHOWN):
    """Indices of misclassified digits, most confidently wrong first."""
    y_pred = probs.argmax(1)
    wrong = np.flatnonzero(y_pred != y_true)
    true_prob = probs[wrong, y_true[wrong]]
    return wrong[np.argsort(true_prob)][:limit]


def write_misclassified(x_uint8, y_true, probs, path, title, limit=WORST_SHOWN):
    plt = _pyplot()
    worst = worst_errors(y_true, probs, limit)
    cols = 10
    rows = max(1, int(np.ceil(len(worst) / float(cols))))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.1, rows * 1.35), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, index in zip(axes.ravel()[: len(worst)], worst, strict=True):
        predicted = int(probs[index].argmax())
        ax.imshow(x_uint8[index], cmap="gray", vmin=0, vmax=255)
        ax.set_title("%d->%d %.0f%%" % (y_true[index], predicted, 100 * probs[index, predicted]), fontsize=8)
    fig.suptitle("%s: %d worst test errors (true->predicted, confidence)" % (title, len(worst)), fontsize=10)
    _save_figure(fig, path)
