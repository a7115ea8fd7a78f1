import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Quieter TensorFlow in tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture
def tiny_bundle(tmp_path):
    """A seeded linear ONNX bundle (no TensorFlow needed)."""
    from tests.fixtures.tiny import linear_bundle

    return linear_bundle(tmp_path / "tiny")
