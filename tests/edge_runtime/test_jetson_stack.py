"""The runtime under the original Jetson Nano's own software stack, on this workstation.

JetPack 4.6 gives Python 3.6.9, numpy 1.19 and OpenCV 4.1.1 (no ONNX Runtime). `make venv-py36`
builds `.venv-py36` with pyenv's Python 3.6 + numpy 1.19.4 + opencv-python-headless 4.1.1.26, and
`make test` points JETSON_STACK_PYTHON at it; CI does both. These tests run the real CLI in that
interpreter: vermin proves the syntax floor, this proves the APIs (numpy 1.19, OpenCV 4.1's DNN
importer reading our ONNX) and the accuracy on the recorded scenes.
"""

import functools
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edge_runtime import preprocess as pp
from edge_runtime import scenes as sc
from edge_runtime.synthetic import SyntheticCamera

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = os.environ.get("JETSON_STACK_PYTHON")
BUNDLE = os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn")
SCENES = os.path.join(ROOT, "tests", "data", "scenes")

pytestmark = pytest.mark.skipif(
    not PYTHON, reason="JETSON_STACK_PYTHON is not set (run `make venv-py36`, then `make test`)"
)


def run_py36(args, timeout=240):
    proc = subprocess.Popen(
        [PYTHON, "-m", "edge_runtime"] + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        universal_newlines=True,
    )
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_info_reports_the_nano_stack():
    code, out, err = run_py36(["info", "--json"])
    assert code == 0, err
    facts = json.loads(out)
    text = json.dumps(facts)
    assert "3.6." in text and "1.19.4" in text and "4.1.1" in text


@pytest.mark.parametrize("effect, target", [("clean", 0.995), ("camera", 0.985)])
def test_recorded_scenes_with_opencv_411(tmp_path, effect, target):
    jsonl = tmp_path / "out.jsonl"
    code, out, err = run_py36([
        "run", "--model", BUNDLE, "--source", os.path.join(SCENES, effect), "--backend", "opencv",
        "--headless", "--jsonl", str(jsonl),
    ])
    assert code == 0, err
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    by_name = {r["source"]: r["detections"] for r in records}
    scenes = sc.load_scene_folder(os.path.join(SCENES, effect))
    assert len(records) == len(scenes)  # every image processed, none dropped
    true_digits = correct = 0
    for scene in scenes:
        match = sc.match_detections(by_name[os.path.basename(scene.path)], scene.truth)
        true_digits += len(scene.truth)
        correct += match.correct
    accuracy = correct / float(true_digits)
    assert accuracy >= target, "%s: %d/%d = %.4f" % (effect, correct, true_digits, accuracy)


def test_score_on_the_recorded_scenes_with_opencv_411(tmp_path):
    """`score` (the photos-with-truth check users run on the device) under the Nano's stack, OpenCV DNN."""
    report = tmp_path / "score.json"
    code, out, err = run_py36(["score", "--model", BUNDLE, "--backend", "opencv", "--scenes", SCENES,
                               "--report", str(report)])
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["backend"] == "opencv" and data["images"] == 105
    assert data["per_effect"]["clean"]["accuracy"] >= 0.995 and data["per_effect"]["camera"]["accuracy"] >= 0.985
    assert "read right" in out


BOXES_UNDER_PY36 = """
import json, sys
import numpy as np
from edge_runtime import preprocess as pp
data = np.load(sys.argv[1])
frames = [data[name] for name in sorted(data.files)]
print(json.dumps([[list(map(int, box)) for box in pp.digits_from_frame(f).boxes] for f in frames]))
"""


def test_detection_finds_the_same_boxes_under_the_nano_stack(tmp_path):
    """Notebook pages whose rows merged (the stacked split: connected components, np.isin, the widest
    gap) or whose faint digits re-trace without their ruling or wider than SPLIT_WIDTH, synthetic
    camera frames, circled or boxed digits (the contour hierarchy), pages lying on a desk (the paper
    estimate's sharp edges), 1920x1440 frames (a camera up close: the closing scaled to the working
    size, polarity judged on a small copy) and frames in poor light with strong sensor noise (the
    median and the noise gate), and recorded notebook pages enlarged 2x (a slanted margin line's pieces,
    dropped along their fitted axis): numpy 1.19 and OpenCV 4.1.1 give exactly the boxes of today's."""
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import stress_detection as sd

    frames = [sd.notebook_scene(SyntheticCamera(seed=7, effects="camera"), np.random.RandomState(7000 + page))[0]
              for page in (16, 53, 62, 66, 80, 94, 100, 107, 131, 137, 143, 147)]
    camera = SyntheticCamera(seed=8, effects="camera")
    frames += [camera.render(i)[0] for i in range(8)]
    frames += [frame for frame, _ in sd._enclosed(8, 7, "camera")]
    frames += [frame for desk in sd.DESKS for frame, _ in sd._on_desk(3, 7, "camera", desk)]
    frames += [frame for frame, _ in sd._up_close(3, 7, "camera")]
    for factor, noise in ((0.1, 6), (0.2, 10)):
        dim = functools.partial(sd.dimmed, factor=factor, noise=noise)
        frames += [frame for frame, _ in sd._synthetic(3, 7, dim, effects="camera")]
    frames.append(cv2.resize(SyntheticCamera(seed=7, effects="camera").render(21)[0], None, fx=3, fy=3,
                             interpolation=cv2.INTER_CUBIC))
    frames += [frame for frame, _ in sd._recorded_enlarged(45, 2)[38:42]]  # slanted margin lines (_piece_of_a_line)
    np.savez_compressed(str(tmp_path / "frames.npz"), **{"f%03d" % i: frame for i, frame in enumerate(frames)})
    proc = subprocess.run([PYTHON, "-c", BOXES_UNDER_PY36, str(tmp_path / "frames.npz")], cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    today = [[list(map(int, box)) for box in pp.digits_from_frame(f).boxes] for f in frames]
    assert sum(len(boxes) for boxes in today) > 100
    assert json.loads(proc.stdout) == today
