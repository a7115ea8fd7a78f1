"""Scene evaluation: how well a recogniser finds and reads digits in frames with ground truth.

Stdlib, numpy and cv2 only (runs on the Jetson). ``evaluate()`` returns a dict that a test, a
benchmark or the `score` command (``edge_runtime/score.py``) prints or saves.

Ground truth for one frame is a list of ``{"bbox": [x, y, w, h], "digit": d}`` (pixels).
A recogniser is any callable ``frame -> detections`` where a detection is a dict with at
least "bbox" and "digit" (as in the runtime's JSONL lines) or a ``(bbox, digit)`` pair.

Matching (``match_detections``): detections and true digits are paired one-to-one, greedily
by IoU (highest first), pairs below the IoU threshold (default 0.3) are not matched. Then:

- recall    = matched true digits / all true digits (did we find it?)
- precision = matched detections / all detections
- accuracy  = correctly labelled true digits / all true digits (found AND read right)
- false_positives = detections matched to no true digit

A scene folder holds images (``*.jpg``, ``*.jpeg``, ``*.png``) and ``truth.json``::

    {"format": "digit-scenes/1",
     "effect": "camera",                       # optional: the default effect for every image
     "images": {"0001.jpg": {"effect": "camera", "digits": [{"bbox": [x, y, w, h], "digit": 3}]},
                "0002.jpg": [{"bbox": [x, y, w, h], "digit": 7}]}}

An image entry is either the list of digits or a dict with "digits" and an optional "effect";
the plain form ``{"0001.jpg": [...], ...}`` (no "images" key) is accepted too. Without an
effect the folder's name is used (``scenes/clean/``, ``scenes/camera/``).

Boxes take a while to draw; an entry may instead give the image's digits as text (spaces and
line breaks are ignored; writing them in reading order keeps the failure montage readable)::

    {"images": {"page1.jpg": "2026 1125", "page2.jpg": {"text": "31415", "effect": "camera"}}}

Such a frame is scored by its digit counts, order ignored (``text_counts``): a digit value is read
right as often as it is both read and true, and each reading beyond the true count is a false
positive. It is the quick check: where a box is does not count, and a 3 read as an 8 beside an 8
read as a 3 cancel out. Box truth is the strict one.
"""

import json
import os
from typing import List, NamedTuple, Optional

import numpy as np

from . import preprocess
from .smoothing import iou  # the one IoU of the runtime (tracking uses it per frame)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
TRUTH_FILE = "truth.json"
DEFAULT_IOU = 0.3


class Scene(NamedTuple):
    """One frame with ground truth. ``frame`` is loaded lazily by ``load_frame`` when None."""

    name: str
    truth: List[dict]
    effect: str = "unknown"
    path: Optional[str] = None
    frame: Optional[np.ndarray] = None
    text: Optional[str] = None  # the digits in reading order, where the truth is text (``truth`` is then [])


def _as_detection(item):
    if isinstance(item, dict):
        return {"bbox": [int(round(float(v))) for v in item["bbox"]], "digit": _as_digit(item.get("digit"))}
    bbox, digit = item[0], item[1]
    return {"bbox": [int(round(float(v))) for v in bbox], "digit": _as_digit(digit)}


def _as_digit(value):
    if value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


class Match(NamedTuple):
    pairs: list  # [(detection index, truth index, iou)]
    unmatched_detections: list  # detection indices
    unmatched_truth: list  # truth indices
    correct: int  # matched pairs whose digit is right


def match_detections(detections, truth, iou=DEFAULT_IOU):
    """Pair detections with true digits one-to-one, greedily by IoU; see the module docstring."""
    threshold = iou
    dets = [_as_detection(d) for d in detections]
    gts = [_as_detection(t) for t in truth]
    candidates = []
    for i, det in enumerate(dets):
        for j, gt in enumerate(gts):
            overlap = _iou(det["bbox"], gt["bbox"])
            if overlap >= threshold:
                # Prefer the right digit among equally overlapping pairs.
                candidates.append((overlap, det["digit"] == gt["digit"], i, j))
    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    used_d, used_t, pairs = set(), set(), []
    for overlap, _, i, j in candidates:
        if i in used_d or j in used_t:
            continue
        used_d.add(i)
        used_t.add(j)
        pairs.append((i, j, overlap))
    correct = sum(1 for i, j, _ in pairs if dets[i]["digit"] == gts[j]["digit"])
    return Match(
        pairs=sorted(pairs, key=lambda p: p[1]),
        unmatched_detections=[i for i in range(len(dets)) if i not in used_d],
        unmatched_truth=[j for j in range(len(gts)) if j not in used_t],
        correct=correct,
    )


_iou = iou  # match_detections' keyword argument shadows the function name


def _new_counts(strict=False):
    counts = {"frames": 0, "true_digits": 0, "detections": 0, "matched": 0, "correct": 0, "false_positives": 0}
    if strict:
        counts["strict_correct"] = 0
    return counts


def _add(counts, frame_counts):
    for key, value in frame_counts.items():
        counts[key] += value


def _rates(counts):
    out = dict(counts)
    out["recall"] = counts["matched"] / float(counts["true_digits"]) if counts["true_digits"] else 1.0
    out["precision"] = counts["matched"] / float(counts["detections"]) if counts["detections"] else 1.0
    true_digits = float(counts["true_digits"])
    out["accuracy"] = counts["correct"] / true_digits if true_digits else 1.0
    if "strict_correct" in counts:
        out["strict_accuracy"] = counts["strict_correct"] / true_digits if true_digits else 1.0
    return out


def reading_order(detections):
    """``detections`` (dicts with "bbox") in reading order (``preprocess.reading_order``: the order
    detection gives its boxes)."""
    return preprocess.reading_order(detections, box=lambda d: d["bbox"])


def text_digits(text):
    """The digits of a text truth, whitespace dropped; ValueError for anything else."""
    if not isinstance(text, str):
        raise ValueError("expected the digits as a string, got %r" % (text,))
    digits = "".join(text.split())
    if any(c not in "0123456789" for c in digits):  # (not str.isdigit: it takes "²" and other scripts' digits)
        raise ValueError("text truth %r: expected only the digits 0-9, spaces and line breaks" % text)
    return digits


def text_counts(detections, text):
    """Counts (``true_digits``, ``detections``, ``matched``, ``correct``, ``false_positives``) of
    ``detections`` against a text truth (``text_digits``), order ignored: each digit value is read
    right as often as it is both read and true, found as often as there are readings (at most the
    true digits), and each reading beyond the true count is a false positive. A reading whose digit
    is None (shown as ``?``) is found but never right."""
    truth = text_digits(text)
    read = ["?" if d["digit"] is None else str(d["digit"]) for d in detections]
    correct = sum(min(read.count(digit), truth.count(digit)) for digit in set(truth))
    return {"true_digits": len(truth), "detections": len(read), "matched": min(len(read), len(truth)),
            "correct": correct, "false_positives": max(0, len(read) - len(truth))}


def read_text(detections):
    """The digits of ``detections`` as text in reading order (``?`` for a digit of None)."""
    return "".join("?" if d["digit"] is None else str(d["digit"]) for d in reading_order(detections))


def frame_counts(detections, scene, iou=DEFAULT_IOU):
    """One frame's counts: box truth matched by IoU (``match_detections``), text truth by digit
    counts (``text_counts``)."""
    if scene.text is not None:
        counts = text_counts(detections, scene.text)
    else:
        match = match_detections(detections, scene.truth, iou=iou)
        counts = {"true_digits": len(scene.truth), "detections": len(detections), "matched": len(match.pairs),
                  "correct": match.correct, "false_positives": len(match.unmatched_detections)}
    counts["frames"] = 1
    return counts


def _unsure(detections, strict_below):
    """``detections`` with the digit of each reading below ``strict_below`` confidence set to None."""
    return [dict(d, digit=None) if d.get("confidence", 1.0) < strict_below else d for d in detections]


def evaluate(recogniser, scenes, iou=DEFAULT_IOU, keep_failures=20, strict_below=None):
    """Run ``recogniser`` on every scene and score it; returns a dict (see the module docstring).

    scenes: an iterable of Scene (frames are loaded lazily from ``path``) or (frame, truth) pairs.
    The dict has the overall counts and rates, "per_effect" with the same per effect, and
    "failures": up to ``keep_failures`` frames with a miss, a misread or a false positive.
    ``strict_below``: also count, as "strict_correct" / "strict_accuracy", only the readings at
    or above this confidence (the detections' "confidence"; a reading below it is shown as ``?``).
    """
    strict = strict_below is not None
    total = _new_counts(strict)
    per_effect = {}
    failures = []
    for index, scene in enumerate(scenes):
        if not isinstance(scene, Scene):
            frame, truth = scene
            scene = Scene(name=str(index), truth=list(truth), frame=frame)
        frame = scene.frame if scene.frame is not None else load_frame(scene)
        raw = list(recogniser(frame))
        detections = [dict(_as_detection(d), confidence=float(d["confidence"])) if isinstance(d, dict)
                      and "confidence" in d else _as_detection(d) for d in raw]
        counts = frame_counts(detections, scene, iou)
        if strict:
            counts["strict_correct"] = frame_counts(_unsure(detections, strict_below), scene, iou)["correct"]
        _add(total, counts)
        _add(per_effect.setdefault(scene.effect, _new_counts(strict)), counts)
        wrong = counts["correct"] < counts["true_digits"] or counts["false_positives"]
        if wrong and len(failures) < keep_failures:
            failure = {"scene": scene.name, "effect": scene.effect, "truth": scene.truth, "detections": detections}
            if scene.text is not None:
                failure.update(text=text_digits(scene.text), read=read_text(detections))
            failures.append(failure)
    result = _rates(total)
    result["iou"] = iou
    result["per_effect"] = {effect: _rates(counts) for effect, counts in sorted(per_effect.items())}
    result["failures"] = failures
    return result


# --------------------------------------------------------------------------
# Scene folders
# --------------------------------------------------------------------------


def _truth_entries(data, default_effect):
    images = data.get("images", data) if isinstance(data, dict) else None
    if not isinstance(images, dict):
        raise ValueError('expected {"images": {"file.jpg": [{"bbox": [x, y, w, h], "digit": d}, ...]}} '
                         'or {"images": {"file.jpg": "2026"}} (the digits as text)')
    effect = data.get("effect", default_effect) if "images" in data else default_effect
    for name, entry in sorted(images.items()):
        text = None
        if isinstance(entry, dict):
            digits, entry_effect, text = entry.get("digits", []), entry.get("effect", effect), entry.get("text")
        else:
            digits, entry_effect = entry, effect
        if isinstance(digits, str):
            digits, text = [], digits
        if text is not None:
            try:
                text_digits(text)
            except ValueError as exc:
                raise ValueError("%s: %s" % (name, exc))
            yield name, [], entry_effect, text
            continue
        truth = []
        for item in digits:
            bbox = [int(v) for v in item["bbox"]]
            if len(bbox) != 4 or bbox[2] <= 0 or bbox[3] <= 0:
                raise ValueError("%s: bbox %r is not [x, y, w, h] with w, h > 0" % (name, item["bbox"]))
            entry_truth = dict(item)  # extra keys (e.g. the source of the digit) are kept
            entry_truth.update(bbox=bbox, digit=_as_digit(item["digit"]))
            truth.append(entry_truth)
        yield name, truth, entry_effect, None


def load_scene_folder(folder):
    """Scenes of one folder with a truth.json (frames not loaded yet), sorted by file name."""
    folder = str(folder)
    truth_path = os.path.join(folder, TRUTH_FILE)
    if not os.path.isfile(truth_path):
        raise ValueError("%s: no %s (expected ground truth for the images in this folder)" % (folder, TRUTH_FILE))
    with open(truth_path) as handle:
        try:
            data = json.load(handle)
        except ValueError as exc:
            raise ValueError("%s: not valid JSON (%s)" % (truth_path, exc))
    default_effect = os.path.basename(os.path.normpath(folder))
    scenes = []
    try:
        entries = list(_truth_entries(data, default_effect))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError("%s: %s" % (truth_path, exc))
    for name, truth, effect, text in entries:
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise ValueError("%s names %s, which does not exist" % (truth_path, path))
        scenes.append(
            Scene(
                name=os.path.join(os.path.basename(os.path.normpath(folder)), name),
                truth=truth,
                effect=effect,
                path=path,
                text=text,
            )
        )
    return scenes


def load_scenes(path):
    """Scenes from a folder with truth.json, or from every subfolder that has one (sorted)."""
    path = str(path)
    if os.path.isfile(os.path.join(path, TRUTH_FILE)):
        return load_scene_folder(path)
    if not os.path.isdir(path):
        raise ValueError("%s: not a folder (expected scenes/<name>/ with images and %s)" % (path, TRUTH_FILE))
    scenes = []
    for name in sorted(os.listdir(path)):
        sub = os.path.join(path, name)
        if os.path.isfile(os.path.join(sub, TRUTH_FILE)):
            scenes.extend(load_scene_folder(sub))
    if not scenes:
        raise ValueError("%s: no %s in it, nor in a subfolder of it" % (path, TRUTH_FILE))
    return scenes


def load_frame(scene):
    """The scene's frame (BGR uint8), read from its path when not already in memory."""
    if scene.frame is not None:
        return scene.frame
    import cv2

    frame = cv2.imread(scene.path, cv2.IMREAD_COLOR)
    if frame is None:
        raise ValueError("%s: cannot be read as an image" % scene.path)
    return frame


# --------------------------------------------------------------------------
# Recognisers
# --------------------------------------------------------------------------


def recogniser_from_infer(infer, pre=None, labels=None, min_confidence=0.0, **detect_options):
    """frame -> detections, from a function ``infer(batch) -> probabilities [N, classes]``.

    ``pre`` is the manifest's "preprocess" dict; ``labels`` maps class index to digit.
    Detections below ``min_confidence`` are dropped.
    """
    from edge_runtime.preprocess import digits_from_frame, read_numbers

    def recognise(frame):
        found = digits_from_frame(frame, pre, **detect_options)
        if not found.boxes:
            return []
        boxes, probs = read_numbers(found.boxes, np.asarray(infer(found.batch)), found.numbers, infer)
        classes = probs.argmax(axis=1)
        out = []
        for box, cls, row in zip(boxes, classes, probs):  # noqa: B905 (Python 3.6)
            confidence = float(row[cls])
            if confidence < min_confidence:
                continue
            digit = _as_digit(labels[cls]) if labels else int(cls)
            out.append({"bbox": [int(v) for v in box], "digit": digit, "confidence": confidence})
        return out

    return recognise
