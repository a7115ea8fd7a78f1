"""Latency statistics for benchmarks: one definition, used by `bench` and `verify-jetson`.

Definitions (so numbers from different machines can be compared):

* percentiles use linear interpolation between the two closest ranks (NumPy's default,
  ``np.percentile(..., interpolation="linear")``): p50 of [1, 2, 3, 4] is 2.5;
* ``std_ms`` is the population standard deviation (ddof=0) of the per-iteration times;
* ``images_per_s`` is ``batch * iters / (sum of the timed iterations in seconds)``, i.e.
  ``batch * 1000 / mean_ms``: warm-up iterations are never part of it.

Python 3.6 / NumPy 1.19 compatible.
"""

import math

import numpy as np

PERCENTILES = (50, 90, 99)
SUMMARY_KEYS = ("iters", "mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p90_ms", "p99_ms", "images_per_s")


def _as_ms_array(ms):
    values = np.asarray(list(ms), dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("no timings to summarise: run at least one iteration")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("timings must be finite and non-negative milliseconds")
    return values


def percentile(ms, q):
    """The q-th percentile (0..100) of ``ms`` with linear interpolation between ranks."""
    values = np.sort(_as_ms_array(ms))
    if not 0 <= q <= 100:
        raise ValueError("percentile q must be in 0..100, got %r" % (q,))
    pos = (values.size - 1) * (q / 100.0)
    lo = int(math.floor(pos))
    hi = min(lo + 1, values.size - 1)
    return float(values[lo] + (values[hi] - values[lo]) * (pos - lo))


def median(ms):
    return percentile(ms, 50)


def latency_summary(ms, batch=1):
    """Summary dict (keys in SUMMARY_KEYS) of per-iteration times in milliseconds.

    >>> s = latency_summary([1.0, 2.0, 3.0, 4.0], batch=8)
    >>> s["p50_ms"], s["mean_ms"], s["images_per_s"]
    (2.5, 2.5, 3200.0)
    """
    if int(batch) < 1:
        raise ValueError("batch must be >= 1, got %r" % (batch,))
    values = _as_ms_array(ms)
    mean = float(values.mean())
    summary = {
        "iters": int(values.size),
        "mean_ms": mean,
        "std_ms": float(values.std()),
        "min_ms": float(values.min()),
        "max_ms": float(values.max()),
    }
    for q in PERCENTILES:
        summary["p%d_ms" % q] = percentile(values, q)
    summary["images_per_s"] = images_per_second(mean, batch)
    return summary


def images_per_second(mean_ms, batch=1):
    """Throughput from the mean latency of one call on ``batch`` images."""
    if mean_ms <= 0:
        return float("inf")
    return float(batch) * 1000.0 / float(mean_ms)


def fps_from_frame_ms(frame_ms):
    """Frames per second of a loop whose frames took ``frame_ms`` milliseconds each."""
    values = _as_ms_array(frame_ms)
    total = float(values.sum())
    return float(values.size) * 1000.0 / total if total > 0 else float("inf")


def stage_medians(stage_ms):
    """{stage: [ms, ...]} -> {stage: median ms}; stages with no samples are left out."""
    return {name: median(values) for name, values in stage_ms.items() if len(values)}


def rounded(summary, digits=4):
    """A copy with floats rounded for JSON and tables (integers untouched)."""
    out = {}
    for key, value in summary.items():
        out[key] = round(value, digits) if isinstance(value, float) and math.isfinite(value) else value
    return out
