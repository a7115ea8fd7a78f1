"""Offline MNIST: real splits, hash check, user copies (npz, IDX), augmentation pipeline."""

import gzip
import os
import shutil
import struct

import numpy as np
import pytest

from edge_runtime.errors import UserError

pytest.importorskip("tensorflow")

from train import data  # noqa: E402

MNIST_TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist()


def test_real_mnist_splits_shapes_dtypes_and_counts(mnist):
    assert mnist.x_train.shape == (50000, 28, 28) and mnist.y_train.shape == (50000,)
    assert mnist.x_valid.shape == (10000, 28, 28) and mnist.y_valid.shape == (10000,)
    assert mnist.x_test.shape == (10000, 28, 28) and mnist.y_test.shape == (10000,)
    assert mnist.x_train.dtype == np.uint8 and mnist.y_train.dtype == np.int64
    assert np.bincount(mnist.y_test, minlength=10).tolist() == MNIST_TEST_LABEL_COUNTS
    # white ink on black: background 0, ink up to 255 (floats were uint8/256, mapped back exactly)
    assert mnist.x_test[:, 0, 0].max() == 0 and mnist.x_test.max() == 255
    assert 33.0 < mnist.x_test.mean() < 34.0


def test_uint8_from_floats_is_exact():
    values = np.arange(256, dtype=np.uint8)
    floats = (values / 256.0).astype(np.float32)
    assert np.array_equal(data.uint8_from_floats(floats), values)


def test_bundled_copy_is_found_without_importing_the_package():
    import sys

    sys.modules.pop("mnist", None)
    path = data.bundled_mnist_path()
    assert path.endswith(os.path.join("mnist", "data", "mnist.pkl.gz"))
    assert "mnist" not in sys.modules


def test_tampered_copy_fails_the_hash_check_before_unpickling(tmp_path):
    tampered = tmp_path / "mnist.pkl.gz"
    shutil.copyfile(data.bundled_mnist_path(), str(tampered))
    with open(str(tampered), "r+b") as handle:
        handle.seek(1000)
        byte = handle.read(1)
        handle.seek(1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(UserError, match="sha256.*--data"):
        data.splits_from_pickle(str(tampered))


def test_missing_package_says_how_to_fix(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UserError, match="make venv"):
        data.bundled_mnist_path()


def test_missing_user_copy_says_how_to_fix(tmp_path):
    with pytest.raises(UserError, match="does not exist.*--data"):
        data.load_mnist(str(tmp_path / "nope.npz"), cache_dir=None)


def _small_set(seed=0, n_train=120, n_test=30):
    rng = np.random.RandomState(seed)
    return (
        rng.randint(0, 256, (n_train, 28, 28)).astype(np.uint8),
        rng.randint(0, 10, n_train).astype(np.uint8),
        rng.randint(0, 256, (n_test, 28, 28)).astype(np.uint8),
        rng.randint(0, 10, n_test).astype(np.uint8),
    )


def test_user_npz_is_split_and_cached(tmp_path):
    x_train, y_train, x_test, y_test = _small_set()
    path = tmp_path / "mnist.npz"
    np.savez(str(path), x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    cache = tmp_path / "cache"
    splits = data.load_mnist(str(path), cache_dir=str(cache))
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_test)) == (100, 20, 30)
    assert np.array_equal(splits.x_valid, x_train[100:]) and np.array_equal(splits.y_test, y_test)
    assert splits.y_train.dtype == np.int64
    assert len(os.listdir(str(cache))) == 1
    again = data.load_mnist(str(path), cache_dir=str(cache))
    assert np.array_equal(again.x_train, splits.x_train)


def test_npz_without_the_keras_keys_is_a_clear_error(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(str(path), images=np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(UserError, match="x_train"):
        data.load_mnist(str(path), cache_dir=None)


def _write_idx(path, array, compress):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path + ".gz", "wb") as handle:
            handle.write(payload)
    else:
        with open(path, "wb") as handle:
            handle.write(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_user_idx_folder(tmp_path, compress):
    x_train, y_train, x_test, y_test = _small_set(seed=1)
    for key, array in (("x_train", x_train), ("y_train", y_train), ("x_test", x_test), ("y_test", y_test)):
        _write_idx(str(tmp_path / data.IDX_FILES[key]), array, compress)
    splits = data.load_mnist(str(tmp_path), cache_dir=None)
    assert np.array_equal(splits.x_train, x_train[:100]) and np.array_equal(splits.x_test, x_test)
    assert np.array_equal(splits.y_valid, y_train[100:].astype(np.int64))


def test_truncated_idx_is_a_clear_error(tmp_path):
    path = str(tmp_path / "t10k-images-idx3-ubyte")
    _write_idx(path, np.zeros((5, 28, 28), np.uint8), compress=False)
    with open(path, "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(UserError, match="truncated"):
        data.read_idx(path)


def test_augmentation_keeps_range_is_seeded_and_varies_by_step(mnist):
    x, y = mnist.x_train[:256], mnist.y_train[:256]

    def first_batch(start_step):
        ds = data.dataset_from_arrays(x, y, 64, shuffle=True, augment=data.Augment(), seed=3, start_step=start_step)
        images, labels = next(iter(ds))
        return images.numpy(), labels.numpy()

    a, la = first_batch(0)
    b, lb = first_batch(0)
    c, _ = first_batch(5)
    assert a.shape == (64, 28, 28, 1) and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert np.array_equal(a, b) and np.array_equal(la, lb)
    assert not np.array_equal(a, c)
    # augmentation moves ink but keeps most of it: total ink within +-35 % of the originals on average
    plain = data.dataset_from_arrays(x, y, 256)
    ink_plain = next(iter(plain))[0].numpy().sum() / 256
    assert 0.65 < a.sum() / 64 / ink_plain < 1.35


def test_unaugmented_pipeline_is_the_exact_input(mnist):
    ds = data.dataset_from_arrays(mnist.x_test[:100], mnist.y_test[:100], 50)
    images, labels = next(iter(ds))
    assert np.allclose(images.numpy(), data.as_model_input(mnist.x_test[:50]))
    assert np.array_equal(labels.numpy(), mnist.y_test[:50])
