"""Scene evaluation: IoU matching, scoring, scene folders, and accuracy targets on recorded scenes."""

import json
import os

import numpy as np
import pytest

from edge_runtime import scenes as sc
from edge_runtime.preprocess import digits_from_frame

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENES = os.path.join(ROOT, "tests", "data", "scenes")
BUNDLE_CANDIDATES = [os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn"), os.path.join(ROOT, "artifacts", "cnn")]
# Targets (IoU >= 0.3 match, right digit): clean paper and camera-like frames.
TARGET_CLEAN, TARGET_CAMERA = 0.995, 0.985


def box(x, y, w, h, digit):
    return {"bbox": [x, y, w, h], "digit": digit}


# --------------------------------------------------------------------------
# Matching and scoring
# --------------------------------------------------------------------------


def test_iou_numbers():
    assert sc.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert sc.iou((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert sc.iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150.0)
    assert sc.iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_match_detections_hand_made_cases():
    truth = [box(0, 0, 10, 10, 1), box(100, 0, 10, 10, 2), box(200, 0, 10, 10, 3)]
    detections = [
        box(1, 1, 10, 10, 1),  # right place, right digit
        box(100, 0, 10, 10, 7),  # right place, wrong digit
        box(100, 2, 10, 10, 2),  # a duplicate of the 2nd: only one detection may match it
        box(300, 0, 10, 10, 4),  # nothing there
    ]
    m = sc.match_detections(detections, truth)
    assert [(i, j) for i, j, _ in m.pairs] == [(0, 0), (1, 1)]
    assert m.correct == 1
    assert m.unmatched_detections == [2, 3]
    assert m.unmatched_truth == [2]


def test_match_prefers_the_right_digit_among_equal_overlaps_and_respects_the_threshold():
    truth = [box(0, 0, 10, 10, 5)]
    m = sc.match_detections([box(0, 0, 10, 10, 3), box(0, 0, 10, 10, 5)], truth)
    assert m.correct == 1 and m.pairs[0][0] == 1
    # IoU 0.31 matches at 0.3, IoU 0.29 does not.
    just_in = box(0, 0, 10, 31, 5)  # 100 / 310
    just_out = box(0, 0, 10, 35, 5)  # 100 / 350
    assert len(sc.match_detections([just_in], truth).pairs) == 1
    assert len(sc.match_detections([just_out], truth).pairs) == 0
    assert len(sc.match_detections([just_out], truth, iou=0.25).pairs) == 1
    # One big detection over two digits counts once.
    m = sc.match_detections([box(0, 0, 20, 10, 1)], [box(0, 0, 10, 10, 1), box(10, 0, 10, 10, 1)], iou=0.3)
    assert len(m.pairs) == 1 and len(m.unmatched_truth) == 1
    # Tuples work as detections too.
    assert sc.match_detections([((0, 0, 10, 10), 5)], truth).correct == 1


def test_evaluate_scores_and_per_effect_numbers():
    frames = {
        "a": ([box(0, 0, 10, 10, 1), box(50, 0, 10, 10, 2)], "clean"),
        "b": ([box(0, 0, 10, 10, 3)], "camera"),
        "c": ([], "camera"),
    }
    answers = {
        "a": [box(0, 0, 10, 10, 1), box(50, 0, 10, 10, 9)],  # one right, one misread
        "b": [box(0, 0, 10, 10, 3), box(80, 80, 10, 10, 4)],  # right + a false positive
        "c": [],
    }
    scenes = [
        sc.Scene(name=k, truth=t, effect=e, frame=np.full((1, 1), ord(k), np.uint8)) for k, (t, e) in frames.items()
    ]

    def recogniser(frame):
        return answers[chr(int(frame[0, 0]))]

    result = sc.evaluate(recogniser, scenes)
    assert result["frames"] == 3 and result["true_digits"] == 3 and result["detections"] == 4
    assert result["matched"] == 3 and result["correct"] == 2 and result["false_positives"] == 1
    assert result["recall"] == 1.0
    assert result["precision"] == pytest.approx(0.75)
    assert result["accuracy"] == pytest.approx(2 / 3.0)
    assert result["per_effect"]["clean"]["accuracy"] == pytest.approx(0.5)
    assert result["per_effect"]["camera"]["accuracy"] == 1.0
    assert result["per_effect"]["camera"]["false_positives"] == 1
    assert [f["scene"] for f in result["failures"]] == ["a", "b"]
    # (frame, truth) pairs are accepted as scenes
    pairs = [(np.full((1, 1), ord("b"), np.uint8), frames["b"][0])]
    assert sc.evaluate(recogniser, pairs)["precision"] == 0.5


# --------------------------------------------------------------------------
# Scene folders
# --------------------------------------------------------------------------


def write_png(path, value=200):
    import cv2

    assert cv2.imwrite(str(path), np.full((32, 48, 3), value, np.uint8))


def test_load_scenes_both_truth_formats_and_effects(tmp_path):
    plain = tmp_path / "scenes" / "office"
    plain.mkdir(parents=True)
    write_png(plain / "x.png")
    (plain / "truth.json").write_text(json.dumps({"x.png": [box(1, 2, 3, 4, 7)]}))
    full = tmp_path / "scenes" / "night"
    full.mkdir()
    write_png(full / "a.png")
    write_png(full / "b.png")
    (full / "truth.json").write_text(
        json.dumps(
            {
                "format": "digit-scenes/1",
                "effect": "dim",
                "images": {"b.png": {"effect": "blur", "digits": [box(0, 0, 5, 5, 1)]}, "a.png": {"digits": []}},
            }
        )
    )
    loaded = sc.load_scenes(str(tmp_path / "scenes"))
    assert [s.name for s in loaded] == ["night/a.png", "night/b.png", "office/x.png"]
    assert [s.effect for s in loaded] == ["dim", "blur", "office"]
    assert loaded[2].truth == [box(1, 2, 3, 4, 7)]
    assert sc.load_frame(loaded[0]).shape == (32, 48, 3)
    assert len(sc.load_scenes(str(plain))) == 1


def test_load_scenes_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        sc.load_scenes(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="no truth.json in it, nor in a subfolder"):
        sc.load_scenes(str(tmp_path))
    (tmp_path / "truth.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        sc.load_scenes(str(tmp_path))
    (tmp_path / "truth.json").write_text(json.dumps({"gone.jpg": [box(0, 0, 1, 1, 1)]}))
    with pytest.raises(ValueError, match="gone.jpg, which does not exist"):
        sc.load_scenes(str(tmp_path))
    write_png(tmp_path / "gone.jpg")
    (tmp_path / "truth.json").write_text(json.dumps({"gone.jpg": [box(0, 0, 0, 1, 1)]}))
    with pytest.raises(ValueError, match="w, h > 0"):
        sc.load_scenes(str(tmp_path))


@pytest.fixture(scope="module")
def recorded():
    return sc.load_scenes(SCENES)


def test_recorded_scenes_are_there_and_sane(recorded):
    effects = {s.effect for s in recorded}
    assert effects == {"clean", "camera"}
    assert 80 <= len(recorded) <= 150
    assert sum(len(s.truth) for s in recorded) >= 300
    size = sum(os.path.getsize(s.path) for s in recorded)
    assert size < 3 * 1024 * 1024
    for scene in recorded[::10]:
        frame = sc.load_frame(scene)
        assert frame.shape == (480, 640, 3)
        for item in scene.truth:
            x, y, w, h = item["bbox"]
            assert 0 <= x and 0 <= y and x + w <= 640 and y + h <= 480 and 0 <= item["digit"] <= 9


def test_detection_on_recorded_scenes_finds_the_digits(recorded):
    """No model needed: are the true digits found as boxes (IoU >= 0.3), with few false alarms?"""

    def boxes_only(frame):
        return [{"bbox": b, "digit": None} for b in digits_from_frame(frame).boxes]

    result = sc.evaluate(boxes_only, recorded)
    for effect, numbers in result["per_effect"].items():
        assert numbers["recall"] >= 0.98, (effect, numbers)
        assert numbers["precision"] >= 0.97, (effect, numbers)


# --------------------------------------------------------------------------
# Accuracy targets (need a trained bundle)
# --------------------------------------------------------------------------


def trained_bundle():
    for folder in BUNDLE_CANDIDATES:
        if os.path.isfile(os.path.join(folder, "manifest.json")):
            return folder
    pytest.skip("no trained cnn bundle (tests/fixtures/bundles/cnn or artifacts/cnn; run `make train`)")


class Model(object):
    """A trained bundle run with ONNX Runtime: infer(batch) and a recogniser for evaluate()."""

    def __init__(self, folder):
        ort = pytest.importorskip("onnxruntime")
        from edge_runtime import manifest as mf

        self.manifest = mf.load(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(mf.onnx_path(self.manifest), options, providers=["CPUExecutionProvider"])
        self.recognise = sc.recogniser_from_infer(self.infer, self.manifest["preprocess"], self.manifest["labels"])

    def infer(self, batch):
        return self.session.run(None, {self.manifest["input"]["name"]: batch})[0]

    def accuracy_on_digits(self, images, labels):
        """The model alone on the 28x28 digits themselves: what a perfect camera path would give."""
        from edge_runtime.preprocess import batch_from_crops

        predicted = self.infer(batch_from_crops(list(images), self.manifest["preprocess"])).argmax(axis=1)
        return float(np.mean(predicted == np.asarray(labels)))


@pytest.fixture(scope="module")
def model():
    return Model(trained_bundle())


def mnist_test_images():
    import importlib.util
    import sys

    if importlib.util.find_spec("mnist") is None:
        return None
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        from make_digit_sample import mnist_test_set
    finally:
        sys.path.pop(0)
    return mnist_test_set()[0]


def test_accuracy_targets_on_recorded_scenes(recorded, model):
    """Clean >= 99.5 %, camera >= 98.5 % (IoU >= 0.3, right digit); where the model itself reads the
    scenes' 28x28 MNIST digits less well than that, the camera path must match the model instead."""
    result = sc.evaluate(model.recognise, recorded)
    images = mnist_test_images()
    for effect, target in (("clean", TARGET_CLEAN), ("camera", TARGET_CAMERA)):
        numbers = result["per_effect"][effect]
        bar = target
        if images is not None:
            digits = [d for s in recorded if s.effect == effect for d in s.truth]
            oracle = model.accuracy_on_digits(
                images[[d["mnist_test_index"] for d in digits]], [d["digit"] for d in digits]
            )
            bar = min(target, oracle)
        assert numbers["accuracy"] >= bar, (effect, bar, numbers)
    assert result["precision"] >= 0.98, result


@pytest.mark.slow
@pytest.mark.parametrize("effects,target,loss", [("clean", TARGET_CLEAN, 0.003), ("camera", TARGET_CAMERA, 0.01)])
def test_accuracy_targets_on_synthetic_camera(model, effects, target, loss):
    """300 synthetic frames: the target, or at most ``loss`` below the model on the same 28x28 digits."""
    from edge_runtime.synthetic import SyntheticCamera

    camera = SyntheticCamera(seed=2026, effects=effects)
    scenes = [camera.render(i) for i in range(300)]
    result = sc.evaluate(model.recognise, scenes)
    sources = [t["source"] for _, truth in scenes for t in truth]
    oracle = model.accuracy_on_digits(camera.images[sources], camera.labels[sources])
    assert result["accuracy"] >= min(target, oracle - loss), (oracle, result)


def stress_scenes():
    """``scripts/stress_detection.py``, whose renderers make the stress cases' scenes."""
    import sys

    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    try:
        import stress_detection
    finally:
        sys.path.pop(0)
    return stress_detection


def test_a_camera_up_close_reads_digits_as_well_as_a_640x480_one(model):
    """The stress case "a 1920x1440 camera up close" (digits 120-360 px, strokes up to about 50 px),
    seed 7: 24 camera and 12 clean frames. At least 98 % read right and at most one false box, as at
    640x480 (the paper closing scaled to the working size; with a fixed one: 87 %, 16 false boxes)."""
    sd = stress_scenes()
    frames = sd._up_close(24, 7, "camera") + sd._up_close(12, 7, "clean")
    result = sc.evaluate(model.recognise, frames)
    assert result["true_digits"] > 150
    assert result["accuracy"] >= 0.98, result
    assert result["false_positives"] <= 1, result


def test_digits_circled_or_boxed_in_pen_are_read_without_their_ring(model):
    """The stress case "digits circled or boxed in pen", seed 7, 40 clean and 40 camera frames (240
    digits). A ring that touches its digit (or does at the re-trace's level) made one component with
    it, read with the ring (a 7 in a circle as a 0): 77.5 %. Peeled (``_peeled``): at least 87 %."""
    sd = stress_scenes()
    frames = sd._enclosed(40, 7, "clean") + sd._enclosed(40, 7, "camera")
    result = sc.evaluate(model.recognise, frames)
    assert result["true_digits"] == 240
    assert result["accuracy"] >= 0.87, result
    assert result["false_positives"] <= 8, result


def test_numbers_whose_digits_are_apart_in_the_frame_are_read_digit_by_digit(model, monkeypatch):
    """The stress case "numbers written close together", seed 7, 60 clean and 60 camera pages (833
    digits, 2-5 a number, -0.1 to 0.15 x their height apart). Digits whose strokes are a pixel or
    two apart are one box at the working size; parted along their own strokes in the frame
    (``_apart_pieces``) the fixture cnn reads 83.8 % of the digits (80.8 % with cuts at columns only;
    82.6 % when the apart pieces came before any cut and readings were scored by their summed log
    confidence). The pieces of a wide box cut at its columns are kept from a geometric mean
    confidence of 0.98 (``NUMBER_SURE``): at 0.995 it read 5 digits fewer (83.2 %)."""
    from edge_runtime import preprocess

    sd = stress_scenes()
    frames = sd._numbers(60, 7, "clean") + sd._numbers(60, 7, "camera")
    result = sc.evaluate(model.recognise, frames)
    assert result["true_digits"] == 833
    assert result["accuracy"] >= 0.83 and result["false_positives"] <= 3, result
    bar = preprocess.NUMBER_SURE
    monkeypatch.setattr(preprocess, "NUMBER_SURE", 0.995)
    stricter = sc.evaluate(model.recognise, frames)
    assert result["correct"] - stricter["correct"] >= 3, (result, stricter)
    monkeypatch.setattr(preprocess, "NUMBER_SURE", bar)
    monkeypatch.setattr(preprocess, "_apart_pieces", lambda *args: [])
    columns_only = sc.evaluate(model.recognise, frames)
    assert result["accuracy"] - columns_only["accuracy"] >= 0.03, (result, columns_only)


def test_the_int8_model_reads_the_recorded_scenes_as_fp32_does(recorded):
    """`run`'s default on a CPU with int8 dot products is the bundle's INT8 model: on the recorded
    scenes it reads within a digit of FP32 per effect (clean / camera), and finds the same boxes."""
    pytest.importorskip("onnxruntime")
    from edge_runtime import manifest as mf
    from edge_runtime.backends import open_backend

    manifest = mf.load(trained_bundle())
    if "onnx_int8" not in manifest:
        pytest.skip("the bundle has no model.int8.onnx (python -m convert int8 BUNDLE)")
    results = {}
    for precision in ("fp32", "int8"):
        with open_backend(manifest, "onnxruntime", precision=precision, intra_op_threads=1) as net:
            recognise = sc.recogniser_from_infer(net.infer, manifest["preprocess"], manifest["labels"])
            results[precision] = sc.evaluate(recognise, recorded)
    for effect in ("clean", "camera"):
        fp32, int8 = results["fp32"]["per_effect"][effect], results["int8"]["per_effect"][effect]
        assert abs(int8["correct"] - fp32["correct"]) <= 1, (effect, fp32, int8)
        assert int8["matched"] == fp32["matched"] and int8["detections"] == fp32["detections"], (effect, fp32, int8)
