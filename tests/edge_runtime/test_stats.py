import math

import numpy as np
import pytest

from edge_runtime import stats


def test_summary_of_known_timings():
    s = stats.latency_summary([4.0, 1.0, 3.0, 2.0], batch=8)
    assert s["iters"] == 4
    assert s["mean_ms"] == 2.5
    assert s["min_ms"] == 1.0 and s["max_ms"] == 4.0
    assert s["p50_ms"] == 2.5  # linear interpolation between 2 and 3
    assert s["p90_ms"] == pytest.approx(3.7)  # rank 2.7 -> 3 + 0.7 * (4 - 3)
    assert s["p99_ms"] == pytest.approx(3.97)
    assert s["std_ms"] == pytest.approx(math.sqrt(1.25))  # population std
    assert s["images_per_s"] == pytest.approx(3200.0)  # 8 images / 2.5 ms
    assert set(stats.SUMMARY_KEYS) == set(s)


def test_percentiles_match_numpy_linear():
    rng = np.random.RandomState(3)
    ms = rng.gamma(2.0, 1.5, size=257)
    for q in (0, 10, 50, 90, 99, 100):
        assert stats.percentile(ms, q) == pytest.approx(float(np.percentile(ms, q)), rel=1e-12)


def test_single_sample_and_constant():
    s = stats.latency_summary([5.0])
    assert s["p50_ms"] == s["p99_ms"] == s["min_ms"] == 5.0
    assert s["std_ms"] == 0.0
    assert s["images_per_s"] == 200.0


def test_fps_and_stage_medians():
    assert stats.fps_from_frame_ms([2.0, 2.0, 6.0]) == pytest.approx(300.0)  # 3 frames in 10 ms
    med = stats.stage_medians({"capture": [1.0, 3.0, 2.0], "infer": [0.5, 0.7], "output": []})
    assert med == {"capture": 2.0, "infer": pytest.approx(0.6)}


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [-1.0]])
def test_bad_timings_raise(bad):
    with pytest.raises(ValueError):
        stats.latency_summary(bad)


def test_bad_batch_and_q():
    with pytest.raises(ValueError, match="batch"):
        stats.latency_summary([1.0], batch=0)
    with pytest.raises(ValueError, match="percentile"):
        stats.percentile([1.0], 101)


def test_rounded_keeps_ints():
    r = stats.rounded({"iters": 3, "mean_ms": 1.234567891, "x": float("inf")}, digits=3)
    assert r == {"iters": 3, "mean_ms": 1.235, "x": float("inf")}
