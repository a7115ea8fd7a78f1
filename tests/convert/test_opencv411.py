"""The exported graph in the Jetson's own OpenCV (4.1.1), when an interpreter with it is at hand.

Set OPENCV411_PYTHON to a Python whose cv2 is 4.1.x, e.g. on the workstation:
    python3.6 -m venv /tmp/py36cv && /tmp/py36cv/bin/pip install numpy==1.19.4 opencv-python-headless==4.1.1.26
    OPENCV411_PYTHON=/tmp/py36cv/bin/python pytest tests/convert/test_opencv411.py
(on a Jetson, JetPack's python3 has it). Skipped otherwise.
"""

import os
import subprocess

import numpy as np
import pytest

from tests.convert.conftest import needs_workstation_stack

needs_workstation_stack()

PYTHON = os.environ.get("OPENCV411_PYTHON")
RUNNER = """
import sys, numpy as np, cv2
assert cv2.__version__.startswith("4.1."), cv2.__version__
data = np.load(sys.argv[2])
net = cv2.dnn.readNetFromONNX(sys.argv[1])
net.setInput(data["x"])
np.save(sys.argv[3], net.forward().reshape(len(data["x"]), -1))
"""


@pytest.mark.skipif(not PYTHON, reason="OPENCV411_PYTHON (a Python with OpenCV 4.1.x) is not set")
@pytest.mark.parametrize("zoo_name", [None, "mlp", "cnn", "cnn3_bn"])
def test_opencv_411_matches_keras(zoo_name, small_cnn, digits, tmp_path):
    import onnx

    from convert.onnx_from_keras import onnx_from_keras

    if zoo_name is None:
        model = small_cnn
    else:
        models = pytest.importorskip("train.models")
        model = models.build(zoo_name, seed=0)
    x = digits[0].astype(np.float32)[..., None] / 255.0
    expected = model.predict(x, verbose=0)
    onnx.save(onnx_from_keras(model, name=zoo_name or "small"), str(tmp_path / "m.onnx"))
    np.savez(str(tmp_path / "x.npz"), x=x)
    subprocess.check_call([PYTHON, "-c", RUNNER, str(tmp_path / "m.onnx"), str(tmp_path / "x.npz"),
                           str(tmp_path / "out.npy")])
    probs = np.load(str(tmp_path / "out.npy"))
    assert np.abs(probs - expected).max() < 1e-5
    assert (probs.argmax(1) == expected.argmax(1)).all()
