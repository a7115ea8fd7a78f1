"""The runtime under the original Jetson Nano's own software stack, on this workstation.

JetPack 4.6 gives Python 3.6.9, numpy 1.19 and OpenCV 4.1.1 (no ONNX Runtime). `make venv-py36`
builds `.venv-py36` with pyenv's Python 3.6 + numpy 1.19.4 + opencv-python-headless 4.1.1.26, and
`make test` points JETSON_STACK_PYTHON at it; CI does both. These tests run the real CLI in that
interpreter: vermin proves the syntax floor, this proves the APIs (numpy 1.19, OpenCV 4.1's DNN
importer reading our ONNX) and the accuracy on the recorded scenes.
"""

import json
import os
import subprocess

import pytest

from edge_runtime import scenes as sc

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
