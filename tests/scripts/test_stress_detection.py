"""scripts/stress_detection.py: recognition under fonts, poor light, JPEG and faded ink."""

import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "stress_detection.py")
BUNDLE = os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import stress_detection as sd  # noqa: E402

ACCURACY_BIG = 0.955  # (measured 0.968; 0.944 before the faint pass, 0.855 before the fine-pen changes)
FALSE_BOXES_BIG = 6  # (measured 3)
ACCURACY_SMALL_BOLD = 0.965  # (measured 0.975; 0.954 before the thinning)
ACCURACY_FROM_AFAR = 0.97  # (measured 0.989; 0.915 when digits had to be 3 % of the frame tall)
ACCURACY_NOTEBOOK = 0.975  # (measured 0.985; 0.965 before stacked digits were split)
ACCURACY_PEN = 0.97  # (measured 0.988)
ACCURACY_HELD_UP = 0.95  # (measured 0.983 clean and camera; 0.767 camera before the close-up look replaced pieces)
ACCURACY_NUMBERS = 0.72  # (measured 0.750; 0.618 without reading doubtful wide boxes as pieces)


def run(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("font", sorted(sd.FONTS))
def test_font_scenes_hold_their_digits_inside_the_truth_boxes(font):
    rng = np.random.default_rng(3)
    for ruled in (False, True):
        frame, truth = sd.font_scene(rng, sd.FONTS[font], ruled)
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
        assert 2 <= len(truth) <= 6 and all(0 <= t["digit"] <= 9 for t in truth)
        gray = frame.min(axis=2).astype(np.float32)
        for t in truth:
            x, y, w, h = t["bbox"]
            assert 8 <= h <= 70 and w >= 2
            inside = gray[y : y + h, x : x + w]
            ring = np.concatenate([gray[y - 4, x : x + w], gray[y + h + 3, x : x + w]])
            assert inside.min() < ring.mean() - 40  # ink in the box, paper just outside it
        for i, a in enumerate(truth):  # the boxes keep apart
            assert all(sd._apart(a["bbox"], b["bbox"]) for b in truth[i + 1 :])


def test_big_font_scenes_mix_fine_and_bold_pens():
    rng = np.random.default_rng(3)
    heights, darkest = [], []
    for ruled in (False, True):
        for _ in range(6):
            frame, truth = sd.font_scene(rng, sd.FONTS["simplex"], ruled, big=True)
            assert frame.shape == (480, 640, 3) and 2 <= len(truth) <= 6
            heights += [t["bbox"][3] for t in truth]
            gray = frame.min(axis=2)
            # the darkest ink of each digit: a fine pen's is paler than a bold one's
            for t in truth:
                x, y, w, h = t["bbox"]
                darkest.append(int(gray[y : y + h, x : x + w].min()))
    assert 60 <= min(heights) and max(heights) <= 140
    assert max(darkest) - min(darkest) >= 40  # fine (pale at 1 px) and bold (dark) pens both drawn


def scored(frames):
    """scenes.evaluate of the fixture cnn (ONNX Runtime, one thread) on (frame, truth) pairs."""
    from edge_runtime import manifest as mf
    from edge_runtime import scenes
    from edge_runtime.backends import open_backend
    from edge_runtime.pipeline import batch_for_manifest

    pytest.importorskip("onnxruntime")
    manifest = mf.load(BUNDLE)
    with open_backend(manifest, prefer="onnxruntime", intra_op_threads=1) as net:
        recognise = scenes.recogniser_from_infer(lambda batch: net.infer(batch_for_manifest(batch, manifest)),
                                                 manifest["preprocess"], manifest["labels"])
        return scenes.evaluate(recognise, frames)


def test_big_digits_in_fine_and_bold_pens_are_read():
    """Digits 70-135 px tall in a 1-3 px pen: a fine pen's hairline is grown to MNIST's stroke width
    in the crop, its faint fragments are re-traced to the whole digit, and a fine-pen digit with no
    piece above the frame-wide threshold is found by the faint pass at the ink floor. 30 frames,
    seed 7: 96.8 % of 124 digits right and 3 false boxes (94.4 % without the faint pass; before
    the first two: 85.5 %, 14)."""
    rng = np.random.default_rng(7)
    result = scored([sd.font_scene(rng, sd.FONTS["simplex"], big=True) for _ in range(30)])
    assert result["accuracy"] >= ACCURACY_BIG and result["false_positives"] <= FALSE_BOXES_BIG, result


@pytest.mark.parametrize("factor", [2, 3])
def test_the_recorded_scenes_through_a_higher_resolution_camera_are_read(factor):
    """The 105 recorded scenes enlarged 2x / 3x (a 1280x960 / 1920x1440 camera): as well read as at
    640x480 (98.84 / 99.54 % camera / clean there), and the red margin line slanted with the page, which
    that resolution makes ink, no longer gives 1s: 11 / 17 false boxes before ``_piece_of_a_line``, 2 / 3 now."""
    frames = sd._recorded_enlarged(200, factor)
    assert len(frames) == 105 and frames[0][0].shape[:2] == (480 * factor, 640 * factor)
    result = scored(frames)
    assert result["true_digits"] == 391 and result["accuracy"] >= 0.985, result
    assert result["false_positives"] <= 3, result


def test_small_digits_in_a_marker_are_read():
    """Small bold digits (20-33 px, a 2-5 px pen): strokes thicker than 99 % of MNIST's in the model's
    box are thinned to 3 px. 60 frames, seed 7: 97.5 % of 237 digits right (95.4 % before)."""
    rng = np.random.default_rng(7)
    result = scored([sd.font_scene(rng, sd.FONTS["plain (small)"]) for _ in range(60)])
    assert result["accuracy"] >= ACCURACY_SMALL_BOLD, result


def test_a_page_seen_from_afar_has_small_digits_clear_of_the_edges():
    frames = sd._from_afar(3, 7, "camera")
    heights = []
    for frame, truth in frames:
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8 and 3 <= len(truth) <= 12
        for t in truth:
            x, y, w, h = t["bbox"]
            assert x >= 7 and y >= 7 and x + w <= 633 and y + h <= 473  # the 24 px margins, shrunk 3x
            heights.append(h)
    assert 10 <= min(heights) and max(heights) <= 44


def test_small_digits_on_a_page_seen_from_afar_are_read():
    """Camera frames rendered 3x as big and shrunk to 640x480: digits 11-43 px tall. Those 2.5-3 % of the
    frame tall are kept when they re-trace as one digit. 40 frames, seed 7: 98.9 % of 364 digits right,
    no false box (91.5 % when digits had to be 3 % of the frame tall)."""
    result = scored(sd._from_afar(40, 7, "camera"))
    assert result["accuracy"] >= ACCURACY_FROM_AFAR and result["false_positives"] == 0, result


def test_one_digit_held_up_to_the_camera_fills_a_third_of_the_frame_or_more():
    heights = []
    for frame, truth in sd._held_up(20, 7, "camera"):
        assert frame.shape == (480, 640, 3) and len(truth) == 1
        x, y, w, h = truth[0]["bbox"]
        assert x >= 8 and y >= 8 and x + w <= 632 and y + h <= 472
        heights.append(h)
    assert 150 <= min(heights) and max(heights) <= 390 and max(heights) - min(heights) >= 100


@pytest.mark.parametrize("effects", ["camera", "clean"])
def test_one_digit_held_up_to_the_camera_is_read(effects):
    """One digit 160-384 px tall, often in a marker: read as dark ink on the coarse copy, and found
    whole by the close-up look where the normal look found only pieces of its bold strokes. 60 frames,
    seed 7: 98.3 % right both ways, 1 and 0 false boxes (before: camera 76.7 %, 31 false boxes; clean
    93.3 %, 7)."""
    result = scored(sd._held_up(60, 7, effects))
    assert result["accuracy"] >= ACCURACY_HELD_UP and result["false_positives"] <= 3, result


def test_a_notebook_page_has_rows_of_digits_sitting_on_its_rulings():
    from edge_runtime.synthetic import SyntheticCamera

    source = SyntheticCamera(seed=7, effects="clean")
    for page in range(5):
        frame, truth = sd.notebook_scene(source, np.random.RandomState(page))
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8 and len(truth) >= 2
        rulings = np.flatnonzero((frame[:, 2] != 245).any(axis=1))  # the left edge: paper and rulings only
        spacing = np.median(np.diff(rulings[np.diff(rulings, prepend=-9) > 1]))
        assert 34 <= spacing <= 52
        for t in truth:
            x, y, w, h = t["bbox"]
            foot = y + h - 1
            assert np.abs(rulings - foot).min() <= 3  # sits on a ruling
            assert 0.55 * spacing <= h <= 0.95 * spacing
            assert (frame[y : y + h, x : x + w].min(axis=2) < 128).any()  # the ink is in its box


def test_digits_written_on_the_lines_of_a_notebook_are_read():
    """Rows of digits on neighbouring rulings, each row's tops close under the feet of the row above:
    digits stacked there that merged into one box are split at the empty row between them. 40 pages,
    seed 7, clean: 98.5 % of 400 digits right (96.5 % before the split)."""
    result = scored(sd._notebook(40, 7, "clean"))
    assert result["accuracy"] >= ACCURACY_NOTEBOOK, result


def test_numbers_are_written_close_together_on_level_feet():
    from edge_runtime.synthetic import SyntheticCamera

    source, gaps, overlapping = SyntheticCamera(seed=7, effects="clean"), [], 0
    for page in range(20):
        frame, truth = sd.number_scene(source, np.random.RandomState(page))
        assert frame.shape == (480, 640, 3) and len(truth) >= 2
        for i in range(len(truth) - 1):
            (ax, ay, aw, ah), (bx, by, _, bh) = truth[i]["bbox"], truth[i + 1]["bbox"]
            if abs((ay + ah) - (by + bh)) <= 6 and bx > ax:  # next digit of the same number
                gaps.append((bx - (ax + aw)) / float(ah))
                overlapping += bx < ax + aw
    assert len(gaps) >= 40 and -0.12 <= min(gaps) and max(gaps) <= 0.17
    assert overlapping >= 5  # some digits' boxes overlap: their strokes may touch


def test_numbers_written_close_together_are_read(monkeypatch):
    """Digits of a number 0.15 x their height apart down to overlapping: a box of several of them
    that the model doubts is read again cut at its emptiest columns, and the pieces are kept where
    the model is surer of them. 40 pages, seed 7, clean, fixture cnn: 75.0 % of 288 digits (61.8 %
    without the pieces)."""
    frames = sd._numbers(40, 7, "clean")
    result = scored(frames)
    assert result["accuracy"] >= ACCURACY_NUMBERS, result
    from edge_runtime import preprocess

    monkeypatch.setattr(preprocess, "NUMBER_WIDTH", 1e9)  # no box is wide enough to be cut
    assert scored(frames)["accuracy"] <= result["accuracy"] - 0.1


@pytest.mark.parametrize("digit", sorted(sd.PEN_STYLES))
def test_pen_digits_draw_each_style_at_its_height_and_pen(digit):
    for style in sorted(sd.PEN_STYLES[digit]):
        areas = []
        for pen in (1.2, 3.0, 9.0):
            alpha, name = sd.pen_digit(np.random.RandomState(digit), digit, 100, pen, style)  # (one writer)
            assert name == style and alpha.dtype == np.float32 and 0.0 <= alpha.min() and alpha.max() <= 1.0
            x, y, w, h = sd._ink_bbox(alpha)
            assert 88 <= h <= 114, (style, pen, h)  # (the wobble moves the ends by a few px)
            assert w < h and (w >= 15 or (digit, style) == (1, "stroke")), (style, pen, w)
            areas.append(float(alpha.sum()))
            # strokes written apart stay apart: two pieces
            pieces = cv2.connectedComponents((alpha > 0.25).astype(np.uint8))[0] - 1
            if style in ("bar short of the stem", "bar apart") and pen <= 3:  # (a marker closes the gap)
                assert pieces == 2, (style, pen)
            elif style not in ("open", "crossed", "flag and base"):  # (strokes crossing or touching)
                assert pieces == 1, (digit, style, pen)
        # the ink grows with the pen (less than in proportion where strokes cross or end)
        assert 1.7 <= areas[1] / areas[0] <= 2.0 and 2.5 <= areas[2] / areas[1] <= 3.1, (style, areas)  # (1.8, 2.7-2.9)


def test_pen_scenes_hold_their_digits_inside_the_truth_boxes():
    from edge_runtime.synthetic import SyntheticCamera

    seen, heights = set(), []
    for effects in ("clean", "camera"):
        source = SyntheticCamera(seed=7, effects=effects)
        for page in range(12):
            frame, truth = sd.pen_scene(source, np.random.RandomState(page))
            again, same = sd.pen_scene(source, np.random.RandomState(page))
            assert np.array_equal(frame, again) and truth == same  # (seeded)
            assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8 and 2 <= len(truth) <= 6
            gray = frame.min(axis=2).astype(np.float32)
            for t in truth:
                x, y, w, h = t["bbox"]
                assert t["style"] in sd.PEN_STYLES[t["digit"]]
                seen.add((t["digit"], t["style"]))
                heights.append(h)
                ring = np.concatenate([gray[max(0, y - 5), x : x + w], gray[min(479, y + h + 4), x : x + w]])
                assert gray[y : y + h, x : x + w].min() < np.median(ring) - 25  # ink in its box, paper around
            for i, a in enumerate(truth):
                assert all(sd._apart(a["bbox"], b["bbox"]) for b in truth[i + 1 :])
    assert 18 <= min(heights) and max(heights) <= 125
    assert sum(len(styles) for styles in sd.PEN_STYLES.values()) == 22  # (as the docs count them)
    assert len(seen) >= 18  # most of the 22 styles in 24 pages


def upright_ones(rng, height, pen, frames=12):
    """``frames`` pages of four 1s written straight up (slant within 3 degrees) by ``pen_digit``."""
    out = []
    for _ in range(frames):
        frame, truth = np.full((480, 640, 3), 240.0, np.float32), []
        for x in (60, 220, 380, 520):
            alpha, _ = sd.pen_digit(rng, 1, height, pen, "stroke", slant=3.0)
            ah, aw = alpha.shape
            y = 240 - ah // 2
            region = frame[y : y + ah, x : x + aw]
            region[:] = region * (1 - alpha[..., None]) + 30 * alpha[..., None]
            bx, by, bw, bh = sd._ink_bbox(alpha)
            truth.append({"bbox": [x + bx, y + by, bw, bh], "digit": 1})
        out.append((np.clip(frame, 0, 255).astype(np.uint8), truth))
    return out


@pytest.mark.parametrize("height, before", [(50, 34), (80, 7), (120, 5)])
def test_ones_written_straight_up_with_a_fine_pen_are_found(height, before, monkeypatch):
    """A ballpoint's upright 1 is a line 1-2 working pixels wide, thinner than the 12:1 limit for line
    remnants: with a 1.5 px pen, 34 / 7 / 5 of 48 were found at 50 / 80 / 120 px (a 2.5 or 4 px pen:
    48 / 21 / 10 and 48 / 20 / 10). Standing alone, such a piece is kept
    (``preprocess._lone_stroke``): 48 of 48 at each height and pen."""
    from edge_runtime import preprocess
    from edge_runtime.scenes import iou

    def found(pages):
        return sum(max([iou(t["bbox"], box) for box in preprocess.digits_from_frame(frame).boxes] or [0]) >= 0.5
                   for frame, truth in pages for t in truth)

    pages = upright_ones(np.random.RandomState(height), height, 1.5)
    assert found(pages) == 48
    monkeypatch.setattr(preprocess, "LONE_STROKE", preprocess.MAX_HEIGHT_OVER_WIDTH)  # (the rule off)
    assert found(pages) <= before + 6


def test_digits_written_in_pen_are_read():
    """Digits drawn as pen strokes, not MNIST's: flagged and based 1s, crossed 7s, open 4s, a 5's bar or
    a 4's bar written apart, 24-110 px, pens from a ballpoint on a big digit to a marker. 40 pages,
    seed 7, camera effects, fixture cnn: 98.8 % of 163 digits right, 2 false boxes (clean: 100 % of 152)."""
    result = scored(sd._pen_written(40, 7, "camera"))
    assert result["accuracy"] >= ACCURACY_PEN and result["false_positives"] <= 2, result


@pytest.mark.parametrize("desk", sd.DESKS)
def test_a_page_on_a_desk_is_all_in_view_with_the_desk_around_it(desk):
    for frame, truth in sd._on_desk(4, 7, "clean", desk):
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8 and len(truth) >= 1
        gray = frame.min(axis=2).astype(np.float32)
        page = np.median(gray[200:280, 280:360])  # (the page covers the middle of the frame)
        corners = [gray[:12, :12], gray[:12, -12:], gray[-12:, :12], gray[-12:, -12:]]
        assert all(corner.mean() < page - 60 for corner in corners), desk  # the desk, darker than the paper
        for t in truth:
            x, y, w, h = t["bbox"]
            assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480
            assert (gray[y : y + h, x : x + w] < 128).any()  # the ink is in its moved box


def test_a_turned_pages_true_boxes_follow_the_turned_ink():
    from edge_runtime.synthetic import SyntheticCamera

    camera = SyntheticCamera(seed=5, effects="clean", digits=1)
    off_ink, off_corners = [], []
    for scene in range(20):
        frame, truth = camera.render(scene)
        assert len(truth) == 1
        degrees = 20 if scene % 2 else -20
        turned, by_ink = sd.tilted(frame, truth, degrees, camera.images)
        same, by_corners = sd.tilted(frame, truth, degrees)
        assert np.array_equal(turned, same)
        inked = turned.min(axis=2) < 128
        rows, cols = np.flatnonzero(inked.any(axis=1)), np.flatnonzero(inked.any(axis=0))
        ink = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])

        def edges(box):
            x, y, w, h = box[0]["bbox"]
            return np.array([x, y, x + w, y + h])

        off_ink.append(np.abs(edges(by_ink) - ink).max())
        off_corners.append(np.abs(edges(by_corners) - ink).max())
    assert max(off_ink) <= 4  # (measured 1-4 px on 40 frames)
    assert np.median(off_corners) >= 8  # the turned corners' box (measured a median of 11 px off)
    unturned = sd.moved_truth(truth, np.float32([[1, 0, 0], [0, 1, 0]]), camera.images)
    assert unturned[0]["bbox"] == truth[0]["bbox"]


def test_transforms_darken_fade_and_keep_the_frame_shape():
    from edge_runtime.synthetic import SyntheticCamera

    frame, _ = SyntheticCamera(seed=3, effects="clean").render(0)
    rng = np.random.default_rng(0)
    dark = sd.dimmed(frame, rng, 0.2, 3)
    assert dark.shape == frame.shape and abs(dark.mean() - 0.2 * frame.mean()) < 2
    faded = sd.faded(frame, 0.25).astype(np.int32)
    ink = frame.min(axis=2) < 100  # the digits' strokes
    assert ink.any() and faded[ink].mean() > frame[ink].mean() + 80  # much lighter ink
    assert np.abs(faded[~ink] - frame[~ink].astype(np.int32)).mean() < 3  # paper unchanged
    assert sd.jpeg(frame, 20).shape == frame.shape
    washed = sd.glare(frame, rng).astype(np.int32)
    lighter = (washed - frame).max(axis=2)
    assert washed.shape == frame.shape and (lighter >= 0).all()  # light is only added
    assert 0.01 < (lighter > 0).mean() < 0.4  # in a spot
    spot = lighter == lighter.max()
    assert (washed[spot] >= frame[spot] + 0.5 * (255 - frame[spot].astype(np.int32)) - 1).all()  # 50-90 % to white


def test_half_visible_rulings_at_a_lower_ink_floor_fall_back_to_the_fixed_floor(monkeypatch):
    """On a quiet page without strong ink the floor drops (faded ink); where that turns faint rulings
    into specks, the frame is read at the fixed floor instead. At a 12 % floor (where the rulings of
    these frames are half visible) 98.7 % of the small digits on ruled, dim paper are found; without
    the fallback the noise check wiped digits from 13 more of the 60 frames (86.1 %)."""
    from edge_runtime import preprocess as pp
    from edge_runtime.scenes import iou

    monkeypatch.setattr(pp, "QUIET_FLOOR", 0.12)
    rng = np.random.default_rng(7)
    found = total = 0
    for _ in range(60):
        frame, truth = sd.font_scene(rng, sd.FONTS["plain (small)"], True)
        boxes = pp.digits_from_frame(frame).boxes
        found += sum(1 for t in truth if any(iou(t["bbox"], b) >= 0.3 for b in boxes))
        total += len(truth)
    assert found / float(total) >= 0.98


def test_a_short_run_prints_one_scored_row_per_case():
    pytest.importorskip("onnxruntime")
    done = run("--model", BUNDLE, "--frames", "2", "--seed", "5")
    assert done.returncode == 0, done.stderr
    rate = r"([\d.]+ %|-)"
    rows = re.findall(r"^\| (.+?) \| (\d+) \| (\d+) \| %s \| %s \| %s \| (\d+) \|$" % (rate, rate, rate),
                      done.stdout, re.M)
    assert len(rows) == len(sd.cases(2, 5))  # (the list renders its frames lazily)
    digits = [r for r in rows if not r[0].startswith("blank page")]
    blank = [r for r in rows if r[0].startswith("blank page")]
    assert all(int(r[1]) == 2 and int(r[2]) >= (2 if r[0].startswith("one digit held up") else 4) for r in digits)
    assert all(r[3] != "-" and r[4] != "-" for r in digits)  # (precision is "-" where nothing was found)
    assert all(0.0 <= float(v[:-2]) <= 100.0 for r in digits for v in r[3:6] if v != "-")
    simplex = [r for r in rows if r[0] == "font simplex, plain paper"][0]
    assert float(simplex[3][:-2]) >= 75.0  # a clean printed digit is read
    # Nothing to find on a blank page: accuracy and recall have nothing to count; every box is false.
    assert len(blank) == 7 and all(r[2] == "0" and r[3] == r[4] == "-" for r in blank)
    high = [r for r in rows if "1280x960" in r[0]]  # (rendered at 1280x960, or the recorded scenes enlarged)
    assert len(high) == 6 and all(int(r[1]) == 2 for r in high)
    assert all((r[5] == "-") == (r[6] == "0") for r in blank)


def test_bad_arguments_are_clear_errors(tmp_path):
    done = run("--model", str(tmp_path / "nothing"), "--frames", "1")
    assert done.returncode == 1 and "stress_detection: no manifest at" in done.stderr and "Traceback" not in done.stderr
    done = run("--model", BUNDLE, "--frames", "0")
    assert done.returncode == 2 and "--frames must be at least 1" in done.stderr


def test_squared_paper_draws_a_light_grid_under_the_ink():
    from edge_runtime.synthetic import SyntheticCamera

    frame, _ = SyntheticCamera(seed=3, effects="clean").render(0)
    out = sd.squared(frame, 16, offset=int(np.random.default_rng(0).integers(0, 16)))
    assert out.shape == frame.shape and out.dtype == np.uint8
    darker = out.astype(np.int32).sum(axis=2) < frame.astype(np.int32).sum(axis=2) - 30
    rows, cols = np.flatnonzero(darker.mean(axis=1) > 0.75), np.flatnonzero(darker.mean(axis=0) > 0.75)
    assert len(rows) == 30 and len(cols) == 40, (rows, cols)  # every 16 px, across the whole frame
    assert set(np.diff(rows)) == {16} and set(np.diff(cols)) == {16}
    assert darker.mean() < 0.15  # lines, not a darker page
    assert any("squared paper, 16 px grid" in name for name, _ in sd.cases(1, 7))
