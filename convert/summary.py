"""One aligned text table over bundles: size, accuracy, parity, times, artifact paths."""

import os

from edge_runtime import manifest as mf

from .export import ONNX_FILE, read_training_metrics

COLUMNS = [
    ("model", "model"),
    ("params", "params"),
    ("keras", "Keras acc"),
    ("onnx", "ORT acc"),
    ("fp16", "FP16 acc"),
    ("opencv", "OpenCV acc"),
    ("int8", "INT8 acc"),
    ("ort_diff", "ORT max|dp|"),
    ("fp16_diff", "FP16 max|dp|"),
    ("cv_diff", "OpenCV max|dp|"),
    ("top1", "top-1 ORT/CV"),
    ("verified", "verified"),
    ("train_s", "train s"),
    ("export_s", "export s"),
    ("verify_s", "verify s"),
    ("files", "artifacts"),
]


def _pct(value):
    return "-" if value is None else "%.2f%%" % (100.0 * value)


def _sci(value):
    return "-" if value is None else "%.1e" % value


def _secs(value):
    return "-" if value is None else "%.1f" % value


def _parity(metrics, key, field):
    entry = (metrics.get("parity") or {}).get(key) or {}
    return entry.get(field)


def _int8_cell(entry):
    """The INT8 model's accuracy on the reference digits, "(not verified)" where it failed its bar."""
    if not entry or not entry.get("parity"):
        return "-"
    return _pct(entry["parity"].get("accuracy")) + ("" if entry.get("verified") else " (not verified)")


def row_for_bundle(folder):
    """A dict of display strings for one bundle folder (tolerates missing pieces)."""
    folder = str(folder)
    training = read_training_metrics(folder)
    try:
        manifest = mf.load(folder, check_files=False)
    except mf.ManifestError:
        manifest = None
    metrics = (manifest or {}).get("metrics") or {}
    name = (manifest or {}).get("name") or training.get("name") or os.path.basename(os.path.abspath(folder))
    agreement = [_parity(metrics, key, "top1_agreement") for key in ("onnxruntime_fp32", "opencv_fp32")]
    files = []
    if manifest:
        files = [manifest["onnx"]["file"]]
        for key in ("onnx_fp16", "onnx_int8", "reference"):
            if manifest.get(key):
                files.append(manifest[key]["file"])
    params = training.get("params")
    return {
        "model": name,
        "params": "-" if params is None else "{:,}".format(int(params)),
        "keras": _pct(metrics.get("keras_test_accuracy", training.get("test_accuracy"))),
        "onnx": _pct(metrics.get("onnx_test_accuracy")),
        "fp16": _pct(metrics.get("fp16_test_accuracy")),
        "opencv": _pct(metrics.get("opencv_test_accuracy")),
        "int8": _int8_cell((manifest or {}).get("onnx_int8")),
        "ort_diff": _sci(_parity(metrics, "onnxruntime_fp32", "max_abs_diff")),
        "fp16_diff": _sci(_parity(metrics, "onnxruntime_fp16", "max_abs_diff")),
        "cv_diff": _sci(_parity(metrics, "opencv_fp32", "max_abs_diff")),
        "top1": "/".join(_pct(a) for a in agreement),
        "verified": "no bundle" if manifest is None else ("yes" if manifest.get("verified") else "NO"),
        "train_s": _secs(training.get("train_seconds")),
        "export_s": _secs(((manifest or {}).get("export") or {}).get("seconds")),
        "verify_s": _secs((metrics.get("seconds") or {}).get("total")),
        "files": "%s/{%s}" % (folder.rstrip("/"), ",".join(files or [ONNX_FILE + " missing"])),
    }


def table(rows, columns=COLUMNS):
    """Aligned plain-text table: header, rule, one line per row."""
    widths = [max([len(title)] + [len(str(row[key])) for row in rows]) for key, title in columns]
    def line(cells):
        return "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    lines = [line(title for _, title in columns), line("-" * width for width in widths)]
    lines.extend(line(row[key] for key, _ in columns) for row in rows)
    return "\n".join(lines)


def summary_text(folders):
    return table([row_for_bundle(folder) for folder in folders])
