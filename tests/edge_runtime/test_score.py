"""`python3 -m edge_runtime score`: accuracy on a folder of labelled photos (box or text truth),
the strict column, the failures montage, the draft truth, the exit codes, and bad input."""

import json
import os
import shutil

import cv2
import numpy as np
import pytest

from edge_runtime import scenes as sc
from edge_runtime import score
from edge_runtime.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENES = os.path.join(ROOT, "tests", "data", "scenes")
BUNDLE = os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn")
FP32 = ["--model", BUNDLE, "--backend", "onnxruntime", "--ort-precision", "fp32"]

pytest.importorskip("onnxruntime")


def det(x, y, w, h, digit, confidence=1.0):
    return {"bbox": [x, y, w, h], "digit": digit, "confidence": confidence}


# --------------------------------------------------------------------------
# text truth and reading order
# --------------------------------------------------------------------------


def test_text_counts_order_ignored_misses_misreads_and_extra_readings():
    truth = "2026 1125"  # 8 digits: 2 x3, 0, 6, 1 x2, 5
    read = [det(i * 30, 0, 20, 30, d) for i, d in enumerate([1, 1, 2, 5, 2, 0, 2, 6])]  # all, another order
    assert sc.text_counts(read, truth) == {"true_digits": 8, "detections": 8, "matched": 8, "correct": 8,
                                           "false_positives": 0}
    read[0] = dict(read[0], digit=7)  # a 1 misread as 7
    assert sc.text_counts(read, truth)["correct"] == 7
    missed = read[1:]  # and the 7 gone: 7 readings for 8 digits
    assert sc.text_counts(missed, truth) == {"true_digits": 8, "detections": 7, "matched": 7, "correct": 7,
                                             "false_positives": 0}
    extra = read + [det(300, 0, 20, 30, 4), det(330, 0, 20, 30, 2)]  # two more readings than digits
    counts = sc.text_counts(extra, truth)
    assert counts["false_positives"] == 2 and counts["matched"] == 8 and counts["correct"] == 7
    unsure = [dict(d, digit=None) if d["digit"] == 6 else d for d in read]  # a "?" is found, never right
    assert sc.text_counts(unsure, truth)["correct"] == 6


def test_text_truth_accepts_only_digits_and_whitespace():
    assert sc.text_digits(" 20\n26 ") == "2026" and sc.text_digits("") == ""
    for bad in ("20a6", "2,026", 2026, "2\u00b2", "\u0663"):
        with pytest.raises(ValueError, match="digits"):
            sc.text_digits(bad)


def test_reading_order_keeps_an_uphill_line_and_uneven_heights_together():
    line1 = [det(10, 100, 20, 40, 1), det(40, 94, 20, 40, 2), det(70, 88, 20, 40, 3), det(100, 96, 16, 22, 4)]
    line2 = [det(12, 160, 20, 40, 5), det(44, 155, 22, 44, 6)]
    shuffled = [line2[1], line1[2], line1[3], line2[0], line1[0], line1[1]]
    assert sc.read_text(sc.reading_order(shuffled)) == "123456"
    assert sc.read_text([det(0, 0, 5, 5, None)]) == "?"


def test_evaluate_strict_counts_readings_below_the_bar_as_wrong():
    truth = [{"bbox": [0, 0, 10, 10], "digit": 1}, {"bbox": [50, 0, 10, 10], "digit": 2}]
    frame = np.zeros((1, 1), np.uint8)
    result = sc.evaluate(lambda f: [det(0, 0, 10, 10, 1, 0.55), det(50, 0, 10, 10, 2, 0.9)], [(frame, truth)],
                         strict_below=0.6)
    assert result["accuracy"] == 1.0 and result["strict_correct"] == 1 and result["strict_accuracy"] == 0.5
    text = sc.Scene(name="t", truth=[], text="12", frame=frame)
    result = sc.evaluate(lambda f: [det(0, 0, 10, 10, 1, 0.55), det(50, 0, 10, 10, 2, 0.9)], [text],
                         strict_below=0.6)
    assert result["correct"] == 2 and result["strict_correct"] == 1
    assert result["failures"] == []  # right, though one of them only just
    assert "strict_accuracy" not in sc.evaluate(lambda f: [], [(frame, truth)])


def test_a_truth_file_mixes_boxes_and_text(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.full((20, 20, 3), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "b.png"), np.full((20, 20, 3), 255, np.uint8))
    (tmp_path / "truth.json").write_text(json.dumps({"images": {
        "a.png": "2026", "b.png": {"digits": [{"bbox": [1, 1, 5, 5], "digit": 3}], "effect": "camera"}}}))
    a, b = sc.load_scene_folder(str(tmp_path))
    assert (a.text, a.truth, b.text, b.effect, len(b.truth)) == ("2026", [], None, "camera", 1)
    (tmp_path / "truth.json").write_text(json.dumps({"images": {"a.png": {"text": "20x6"}}}))
    with pytest.raises(ValueError, match="a.png.*digits 0-9"):
        sc.load_scene_folder(str(tmp_path))


# --------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------


def scored(capsys, *args):
    code = main(["score"] + FP32 + list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_recorded_scenes_score_as_the_scene_tests_do(tmp_path, capsys):
    report = tmp_path / "score.json"
    code, out, err = scored(capsys, "--scenes", SCENES, "--report", str(report))
    assert code == 0, err
    data = json.loads(report.read_text())
    assert data["format"] == "digit-score/1" and data["model_precision"] == "fp32" and data["images"] == 105
    assert data["images_per_effect"] == {"camera": 45, "clean": 60}
    clean, camera = data["per_effect"]["clean"], data["per_effect"]["camera"]
    assert (clean["true_digits"], camera["true_digits"]) == (219, 172)
    assert clean["accuracy"] >= 0.995 and camera["accuracy"] >= 0.985, data
    assert clean["strict_accuracy"] <= clean["accuracy"] and data["false_positives"] == 0
    # the same numbers as scenes.evaluate with the recogniser that `run` uses on an image folder
    from edge_runtime import manifest as mf
    from edge_runtime.backends import open_backend

    manifest = mf.load(BUNDLE)
    with open_backend(manifest, prefer="onnxruntime", precision="fp32", intra_op_threads=1) as net:
        direct = sc.evaluate(score.recogniser_for(net, manifest), sc.load_scenes(SCENES), strict_below=0.6)
    assert (data["correct"], data["strict_correct"], data["matched"]) == (
        direct["correct"], direct["strict_correct"], direct["matched"])
    assert "%6.2f %%" % (100 * clean["accuracy"]) in out and "read right" in out


def text_folder(tmp_path, effect="clean", change=None):
    """The recorded scenes of ``effect`` with text truth (their digits in reading order); ``change``:
    (image, position, digit) to write one digit wrong."""
    folder = tmp_path / effect
    folder.mkdir()
    with open(os.path.join(SCENES, effect, "truth.json")) as handle:
        boxes = json.load(handle)["images"]
    texts = {}
    for name, entry in boxes.items():
        shutil.copy(os.path.join(SCENES, effect, name), str(folder / name))
        texts[name] = sc.read_text(sc.reading_order(entry["digits"]))
    if change:
        name, position, digit = change
        text = texts[name]
        assert text[position] != digit
        texts[name] = text[:position] + digit + text[position + 1:]
    (folder / "truth.json").write_text(json.dumps({"images": texts}))
    return folder


def test_text_truth_scores_the_recorded_scenes_like_their_boxes(tmp_path, capsys):
    code, _, err = scored(capsys, "--scenes", os.path.join(SCENES, "clean"), "--report", str(tmp_path / "box.json"))
    assert code == 0, err
    boxes = json.loads((tmp_path / "box.json").read_text())
    folder = text_folder(tmp_path)
    code, _, err = scored(capsys, "--scenes", str(folder), "--report", str(tmp_path / "text.json"))
    assert code == 0, err
    text = json.loads((tmp_path / "text.json").read_text())
    assert text["true_digits"] == boxes["true_digits"] == 219
    assert text["correct"] == boxes["correct"] and text["false_positives"] == boxes["false_positives"] == 0


def test_a_wrong_digit_in_the_truth_costs_one_digit_and_shows_in_the_montage(tmp_path, capsys):
    (tmp_path / "right").mkdir()
    (tmp_path / "wrong").mkdir()
    right = text_folder(tmp_path / "right")
    wrong = text_folder(tmp_path / "wrong", change=("clean_000.jpg", 0, "3"))
    results = {}
    for label, folder in (("right", right), ("wrong", wrong)):
        png = tmp_path / (label + ".png")
        code, out, err = scored(capsys, "--scenes", str(folder), "--report", str(tmp_path / (label + ".json")),
                                "--failures", str(png))
        assert code == 0, err
        results[label] = json.loads((tmp_path / (label + ".json")).read_text())
        sheet = cv2.imread(str(png))
        assert sheet is not None and sheet.shape[1] == 8 * score.TILE_W and sheet.shape[0] % score.TILE_H == 0
        results[label]["tiles"] = int(out.split(" tiles in ")[0].split()[-1])
    assert results["wrong"]["correct"] == results["right"]["correct"] - 1
    assert results["wrong"]["tiles"] == results["right"]["tiles"] + 1
    assert "clean/clean_000.jpg" in [f["scene"] for f in results["wrong"]["failures"]]
    failure = [f for f in results["wrong"]["failures"] if f["scene"] == "clean/clean_000.jpg"][0]
    assert failure["text"][0] == "3" and failure["read"][0] != "3"


def test_failure_tiles_name_misses_misreadings_and_false_boxes():
    frame = np.full((100, 200, 3), 255, np.uint8)
    scene = sc.Scene(name="x/p.png", truth=[{"bbox": [10, 10, 20, 30], "digit": 4},
                                            {"bbox": [60, 10, 20, 30], "digit": 7}], frame=frame)
    detections = [det(60, 10, 20, 30, 1, 0.7), det(150, 50, 20, 30, 8, 0.9)]
    tiles = score.failure_tiles(scene, frame, detections, 0.3)
    assert len(tiles) == 3  # the 4 missed, the 7 read as 1, the false 8
    assert all(t.shape == (score.TILE_H, score.TILE_W, 3) for t in tiles)
    sheet = score.montage(tiles, columns=2)
    assert sheet.shape == (2 * score.TILE_H, 2 * score.TILE_W, 3)
    assert (sheet[score.TILE_H:, score.TILE_W:] == 200).all()  # the empty slot stays grey


def test_min_accuracy_sets_the_exit_code(capsys):
    camera = os.path.join(SCENES, "camera")
    code, out, err = scored(capsys, "--scenes", camera, "--min-accuracy", "0.9")
    assert code == 0, err
    code, out, err = scored(capsys, "--scenes", camera, "--min-accuracy", "1")
    assert code == 1 and "below --min-accuracy 100.00 %" in err
    assert "read right" in out  # the table is printed first


def test_draft_truth_reads_a_folder_and_never_touches_truth_json(tmp_path, capsys, caplog):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in sorted(os.listdir(os.path.join(SCENES, "camera")))[:12]:
        if name.endswith(".jpg"):
            shutil.copy(os.path.join(SCENES, "camera", name), str(folder / name))
    (folder / "broken.png").write_bytes(b"not an image")
    code, out, err = scored(capsys, "--scenes", str(folder))
    assert code == 2 and "--draft-truth" in err and "no truth.json" in err
    code, out, err = scored(capsys, "--scenes", str(folder), "--draft-truth")
    assert code == 0, err
    assert "broken.png: cannot be read" in caplog.text and "1 unreadable images skipped" in out
    draft = json.loads((folder / score.DRAFT_FILE).read_text())
    assert draft["draft"] is True and len(draft["images"]) == 12
    assert not (folder / "truth.json").exists()
    os.rename(str(folder / score.DRAFT_FILE), str(folder / "truth.json"))
    before = (folder / "truth.json").read_bytes()
    code, out, err = scored(capsys, "--scenes", str(folder), "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["accuracy"] == 1.0 and data["recall"] == 1.0 and data["false_positives"] == 0
    assert data["true_digits"] == sum(len(e["digits"]) for e in draft["images"].values()) > 12
    code, _, err = scored(capsys, "--scenes", str(folder), "--draft-truth")
    assert code == 0 and (folder / "truth.json").read_bytes() == before


def test_an_unreadable_image_named_in_the_truth_is_skipped_and_reported(tmp_path, capsys, caplog):
    folder = text_folder(tmp_path)
    (folder / "clean_000.jpg").write_bytes(b"\xff\xd8 truncated")
    code, out, err = scored(capsys, "--scenes", str(folder), "--report", str(tmp_path / "r.json"))
    assert code == 0, err
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["images"] == 59 and data["unreadable"] == [str(folder / "clean_000.jpg")]
    assert "1 unreadable images skipped (not scored)" in out and "clean_000.jpg: cannot be read" in caplog.text
    for name in os.listdir(str(folder)):
        if name.endswith(".jpg"):
            (folder / name).write_bytes(b"")
    code, out, err = scored(capsys, "--scenes", str(folder))
    assert code == 1 and "none of its images could be read" in err


@pytest.mark.parametrize("setup, expected", [
    (lambda d: None, "no such folder"),
    (lambda d: d.mkdir(), "no truth.json in it"),
    (lambda d: (d.mkdir(), (d / "truth.json").write_text("{not json")), "not valid JSON"),
    (lambda d: (d.mkdir(), (d / "truth.json").write_text('{"images": {"gone.png": "12"}}')), "gone.png"),
    (lambda d: (d.mkdir(), (d / "a.png").write_bytes(b""),
                (d / "truth.json").write_text('{"images": {"a.png": "1 2 x"}}')), "digits 0-9"),
])
def test_bad_scene_folders_exit_2_with_the_reason(tmp_path, capsys, setup, expected):
    folder = tmp_path / "scenes"
    setup(folder)
    code, out, err = scored(capsys, "--scenes", str(folder))
    assert code == 2 and expected in err, err


@pytest.mark.parametrize("flag", ["--report", "--failures"])
def test_an_output_that_cannot_be_written_stops_before_the_work(tmp_path, capsys, flag):
    blocker = tmp_path / "a_file"
    blocker.write_text("in the way")
    for path, expected in ((blocker / "out.json", "not a folder"), (tmp_path, "is a folder")):
        code, out, err = scored(capsys, "--scenes", SCENES, flag, str(path))
        assert code == 2 and expected in err and flag in err, err
        assert out == ""  # (nothing scored, nothing written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.parametrize("flag", [["--iou", "0"], ["--iou", "1.5"], ["--min-accuracy", "2"], []])
def test_bad_values_are_refused_by_argparse(flag, capsys):
    args = ["score"] + FP32 + flag + ([] if not flag else ["--scenes", SCENES])
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "score" in capsys.readouterr().err
