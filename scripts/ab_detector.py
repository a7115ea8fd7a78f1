"""Side-by-side pipeline benchmark: digit detection from another git revision vs the working tree.

Shared machines are noisy, so a speed change is only believable when old and new run in one
process, on the same frames, alternating. This script loads ``edge_runtime/preprocess.py`` as it
was at ``--rev`` (``git show``) next to the current one, and runs both through the real threaded
pipeline (``pipeline.run_pipeline``, frames from memory) for ``--rounds`` alternating rounds:

    .venv/bin/python scripts/ab_detector.py --rev 2968a93 --model tests/fixtures/bundles/cnn
    .venv/bin/python scripts/ab_detector.py --rev HEAD~3 --old-threads 0 --new-threads 1

It prints one line per pass and the medians (FPS, p50/p99 frame latency, preprocess and infer
stage medians, process CPU ms per frame). ``--old-threads`` / ``--new-threads`` set the ONNX
Runtime intra-op threads of each side (0 = ONNX Runtime's choice).
"""

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime import pipeline  # noqa: E402
from edge_runtime.sources import MemorySource, open_source  # noqa: E402


def detector_at(rev, workdir):
    """digits_from_frame of edge_runtime/preprocess.py at git revision ``rev``."""
    try:
        text = subprocess.run(["git", "-C", ROOT, "show", "%s:edge_runtime/preprocess.py" % rev],
                              check=True, capture_output=True, text=True).stdout
    except subprocess.CalledProcessError as exc:
        sys.exit("ab_detector: cannot read edge_runtime/preprocess.py at %r: %s" % (rev, exc.stderr.strip()))
    path = os.path.join(workdir, "preprocess_at_rev.py")
    with open(path, "w") as f:
        f.write(text)
    spec = importlib.util.spec_from_file_location("preprocess_at_rev", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.digits_from_frame


def read_frames(uri, count):
    frames = []
    with open_source(uri) as source:
        while len(frames) < count:
            ok, frame, _ = source.read()
            if not ok:
                break
            frames.append(frame)
    if not frames:
        sys.exit("ab_detector: no frames from %s" % uri)
    return frames


def one_pass(manifest, frames, detector, threads, warmup=10):
    warmup = min(warmup, len(frames))
    done = []

    def on_result(result):
        done.append((time.perf_counter(), time.process_time(), dict(result.timings)))

    options = {"intra_op_threads": threads} if threads else {}
    pipeline.run_pipeline(MemorySource(frames[:warmup] + frames), "onnxruntime", manifest,
                          max_frames=len(frames) + warmup, backend_options=options, smooth_window=0,
                          detector=detector, on_result=on_result)
    kept = done[warmup:]
    seconds = kept[-1][0] - done[warmup - 1][0]
    cpu = (kept[-1][1] - done[warmup - 1][1]) * 1e3 / len(kept)
    total = np.array([t["total"] for _, _, t in kept])
    return (len(kept) / seconds, float(np.median(total)), float(np.percentile(total, 99)),
            float(np.median([t["preprocess"] for _, _, t in kept])),
            float(np.median([t["infer"] for _, _, t in kept])), cpu)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", required=True, help="git revision of the old preprocess.py")
    parser.add_argument("--model", default=os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn"))
    parser.add_argument("--source", default="synthetic://")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--old-threads", type=int, default=0)
    parser.add_argument("--new-threads", type=int, default=1)
    args = parser.parse_args(argv)
    manifest = mf.load(args.model)
    frames = read_frames(args.source, args.frames)
    from edge_runtime.preprocess import digits_from_frame

    with tempfile.TemporaryDirectory() as workdir:
        sides = {"old": (detector_at(args.rev, workdir), args.old_threads),
                 "new": (digits_from_frame, args.new_threads)}
        rows = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, (detector, threads) in sides.items():
                row = one_pass(manifest, frames, detector, threads)
                rows[name].append(row)
                print("%-4s fps %4.0f  p50 %.2f  p99 %.2f  preprocess %.2f  infer %.2f  cpu %.2f ms/frame"
                      % ((name,) + row), flush=True)
    print("medians over %d rounds (%d frames from %s, old = %s):" % (args.rounds, len(frames), args.source, args.rev))
    for name, values in rows.items():
        a = np.array(values)
        print("%-4s fps %4.0f (%.0f-%.0f)  p50 %.2f  p99 %.2f (%.2f-%.2f)  preprocess %.2f  infer %.2f  cpu %.2f"
              % (name, np.median(a[:, 0]), a[:, 0].min(), a[:, 0].max(), np.median(a[:, 1]), np.median(a[:, 2]),
                 a[:, 2].min(), a[:, 2].max(), np.median(a[:, 3]), np.median(a[:, 4]), np.median(a[:, 5])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
