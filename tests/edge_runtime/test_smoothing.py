"""Temporal smoothing: association across frames and probability voting stop label flicker."""

import numpy as np
import pytest

from edge_runtime.smoothing import TemporalSmoother, centroid_distance, iou


def onehot(k, p=0.9, n=10):
    v = np.full(n, (1.0 - p) / (n - 1), np.float32)
    v[k] = p
    return v


def test_iou_values():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 10, 10)) == pytest.approx(50 / 150.0)
    assert iou((0, 0, 10, 10), (20, 20, 5, 5)) == 0.0
    assert centroid_distance((0, 0, 10, 10), (3, 4, 10, 10)) == pytest.approx(5 / np.hypot(10, 10))


def test_flicker_is_voted_away():
    sm = TemporalSmoother(window=5)
    box = (100, 100, 40, 60)
    labels = []
    # a 7 that looks like a 1 in every third frame (moving slightly)
    for i in range(12):
        probs = onehot(1, 0.6) if i % 3 == 2 else onehot(7, 0.9)
        out, ids = sm.update([(box[0] + i, box[1], box[2], box[3])], probs[None])
        labels.append(int(out[0].argmax()))
        assert ids == [0]
    assert labels == [7] * 12
    raw = [1 if i % 3 == 2 else 7 for i in range(12)]
    assert raw.count(1) == 4


def test_tracks_follow_their_own_boxes_in_any_order():
    sm = TemporalSmoother(window=3)
    a, b = (10, 10, 30, 40), (200, 10, 30, 40)
    sm.update([a, b], np.stack([onehot(3), onehot(8)]))
    out, ids = sm.update([b, a], np.stack([onehot(8), onehot(3)]))
    assert ids == [1, 0]
    assert list(out.argmax(axis=1)) == [8, 3]


def test_new_box_is_a_new_track_and_old_tracks_expire():
    sm = TemporalSmoother(window=3, max_missed=2)
    sm.update([(0, 0, 10, 10)], onehot(2)[None])
    out, ids = sm.update([(300, 300, 10, 10)], onehot(5)[None])
    assert ids == [1] and int(out[0].argmax()) == 5
    assert np.allclose(out[0], onehot(5))  # not mixed with the other track
    for _ in range(3):
        sm.update([], np.zeros((0, 10), np.float32))
    assert sm.tracks == []


def test_window_limits_memory():
    sm = TemporalSmoother(window=2)
    box = (0, 0, 20, 20)
    for k in (1, 1, 4, 4):
        out, _ = sm.update([box], onehot(k)[None])
    assert np.allclose(out[0], onehot(4))


def test_empty_and_invalid():
    sm = TemporalSmoother()
    out, ids = sm.update([], np.zeros((0, 10), np.float32))
    assert out.shape == (0, 10) and ids == []
    with pytest.raises(ValueError):
        TemporalSmoother(window=0)
