"""The Keras baseline for `edge_runtime bench --compare-keras` (workstation only).

What the tutorials do on a Nano: every camera frame is preprocessed and handed to
``model.predict``. Measured here on the same frames the runtime benchmark used, with the
same preprocessing (edge_runtime.preprocess.digits_from_frame), in two variants:

* ``keras_predict``: ``model.predict(batch, verbose=0)`` once per frame;
* ``tf_function``: a ``tf.function`` with a fixed input signature (no retracing) called once
  per frame, the fastest plain-TensorFlow loop.

    python -m train.keras_baseline --model artifacts/cnn/model.keras --frames frames.npz --out result.json

``frames.npz`` holds ``frames``: uint8 [N, H, W, 3] BGR. The result JSON has ms per frame
(preprocess + inference + argmax, the same span as the runtime pipeline), the inference-only
figures, the predicted digits per frame and the TensorFlow/Keras versions. Exit 3 when
TensorFlow is not installed, 2 for bad input.
"""

import argparse
import logging
import os
import sys
import time

import numpy as np

from edge_runtime import manifest as mf
from edge_runtime.preprocess import digits_from_frame, read_numbers

PROG = "keras_baseline"
LOG = logging.getLogger(__name__)
EXIT_NO_TENSORFLOW = 3


class BaselineError(RuntimeError):
    exit_code = 2


class NoTensorFlowError(BaselineError):
    exit_code = EXIT_NO_TENSORFLOW


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m train.keras_baseline",
        description="Keras model.predict-per-frame and tf.function baselines on saved frames.",
        epilog="example:\n  python -m train.keras_baseline --model artifacts/cnn/model.keras "
               "--frames frames.npz --out result.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", required=True, help="Keras model file (model.keras)")
    parser.add_argument("--frames", required=True, help=".npz with `frames`: uint8 [N, H, W, 3]")
    parser.add_argument("--out", required=True, help="result JSON to write")
    parser.add_argument("--manifest", default=None,
                        help="bundle manifest.json for the preprocess settings (default: next to --model, "
                             "else the project defaults)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed frames per loop first (default: %(default)s)")
    return parser


def import_tensorflow():
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise NoTensorFlowError(
            "TensorFlow is not installed (%s); the Keras baseline runs on the workstation only: "
            "`make venv` installs it (requirements/workstation.txt)" % exc
        ) from exc
    return tf


def preprocess_settings(model_path, manifest_path=None):
    path = manifest_path or os.path.join(os.path.dirname(os.path.abspath(model_path)), mf.MANIFEST_NAME)
    if os.path.exists(path):
        return mf.load(path, check_files=False)["preprocess"]
    return dict(mf.DEFAULT_PREPROCESS)


def frames_from_npz(path):
    if not os.path.exists(path):
        raise BaselineError("frames file %s does not exist" % path)
    with np.load(path) as data:
        if "frames" not in data:
            raise BaselineError("%s has no `frames` array (expected uint8 [N, H, W, 3])" % path)
        frames = data["frames"]
    if frames.ndim not in (3, 4) or len(frames) == 0:
        raise BaselineError("%s: expected frames uint8 [N, H, W, 3] with N >= 1, got shape %s" % (path, frames.shape))
    return frames


def load_keras_model(path):
    import keras

    if not os.path.exists(path):
        raise BaselineError("Keras model %s does not exist; train it first (`make train`)" % path)
    return keras.models.load_model(path, compile=False)


def time_loop(frames, pre, infer, warmup):
    """Per frame: preprocess -> infer (skipped when no digit) -> argmax.
    -> (total ms, infer ms, digits, process CPU ms per frame: all TensorFlow threads, not inflated
    by a busy machine)."""
    clock = time.perf_counter
    for frame in frames[:warmup]:
        found = digits_from_frame(frame, pre)
        if len(found.boxes):
            infer(found.batch)
    totals, infers, digits = [], [], []
    cpu_start = time.process_time()
    for frame in frames:
        t0 = clock()
        found = digits_from_frame(frame, pre)
        t1 = clock()
        labels = []
        if len(found.boxes):
            _, probs = read_numbers(found.boxes, np.asarray(infer(found.batch)), found.numbers, infer)
            labels = [int(k) for k in probs.argmax(axis=1)]
        t2 = clock()
        totals.append((t2 - t0) * 1000.0)
        infers.append((t2 - t1) * 1000.0)
        digits.append(labels)
    cpu_ms = (time.process_time() - cpu_start) * 1000.0 / len(frames)
    return totals, infers, digits, cpu_ms


def predict_fn(model):
    return lambda batch: model.predict(batch, verbose=0)


def tf_function_fn(tf, model):
    shape = [None] + [int(d) for d in model.inputs[0].shape[1:]]
    call = tf.function(lambda x: model(x, training=False),
                       input_signature=[tf.TensorSpec(shape, tf.float32)])
    return lambda batch: call(tf.constant(batch)).numpy()


def mean(values):
    return round(float(sum(values)) / len(values), 4) if values else None


def baseline_from_frames(model_path, frames, pre, warmup=5):
    tf = import_tensorflow()
    import keras

    model = load_keras_model(model_path)
    pre_ms = []
    for frame in frames:  # preprocessing alone, for the record
        t0 = time.perf_counter()
        digits_from_frame(frame, pre)
        pre_ms.append((time.perf_counter() - t0) * 1000.0)
    predict_total, predict_only, predict_digits, predict_cpu = time_loop(frames, pre, predict_fn(model), warmup)
    fn_total, fn_only, fn_digits, fn_cpu = time_loop(frames, pre, tf_function_fn(tf, model), warmup)
    n_digits = sum(len(d) for d in predict_digits)
    pairs = zip(predict_digits, fn_digits, strict=True)
    agree = sum(int(a == b) for pa, pb in pairs for a, b in zip(pa, pb, strict=True))
    return {
        "frames": len(frames),
        "digits": n_digits,
        "keras_predict_ms_per_frame": mean(predict_total),
        "tf_function_ms_per_frame": mean(fn_total),
        "predict_only_ms_per_frame": mean(predict_only),
        "tf_function_only_ms_per_frame": mean(fn_only),
        "preprocess_ms_per_frame": mean(pre_ms),
        "keras_predict_cpu_ms_per_frame": round(predict_cpu, 4),
        "tf_function_cpu_ms_per_frame": round(fn_cpu, 4),
        "predict_vs_tf_function_agreement": round(agree / float(n_digits), 4) if n_digits else None,
        "digits_per_frame": predict_digits,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "warmup_frames": warmup,
    }


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s: %(message)s")
    try:
        frames = frames_from_npz(args.frames)
        pre = preprocess_settings(args.model, args.manifest)
        result = baseline_from_frames(args.model, frames, pre, warmup=max(0, args.warmup))
    except BaselineError as exc:
        sys.stderr.write("%s: error: %s\n" % (PROG, exc))
        return exc.exit_code
    mf.atomic_write_json(args.out, result)
    LOG.info("Keras predict %.2f ms/frame, tf.function %.2f ms/frame over %d frames -> %s",
             result["keras_predict_ms_per_frame"], result["tf_function_ms_per_frame"], result["frames"], args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
