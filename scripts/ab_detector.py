"""Side-by-side pipeline benchmark: digit detection from another git revision, or another model,
vs the working tree.

Shared machines are noisy, so a speed change is only believable when old and new run in one
process, on the same frames, alternating. This script loads ``edge_runtime/preprocess.py`` as it
was at ``--rev`` (``git show``) next to the current one, and runs both through the real threaded
pipeline (``pipeline.run_pipeline``, frames from memory) for ``--rounds`` alternating rounds;
``--old-model`` gives the old side another bundle (a model change, with or without ``--rev``):

    .venv/bin/python scripts/ab_detector.py --rev 2968a93 --model tests/fixtures/bundles/cnn
    .venv/bin/python scripts/ab_detector.py --rev HEAD~3 --old-threads 0 --new-threads 1
    .venv/bin/python scripts/ab_detector.py --old-model artifacts/cnn --model artifacts/cnn5

It prints one line per pass and the medians (FPS, p50/p99 frame latency, preprocess and infer
stage medians, process CPU ms per frame). ``--old-threads`` / ``--new-threads`` set the ONNX
Runtime intra-op threads of each side (0 = ONNX Runtime's choice). Frames, warm-up and timing are
``edge_runtime.bench``'s own (``frames_from_source``, ``memory_passes``), so the figures compare
with ``make bench``.
"""

import argparse
import functools
import importlib.util
import os
import subprocess
import sys
import tempfile
import types

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge_runtime import bench, stats  # noqa: E402
from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime.errors import UserError  # noqa: E402


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
    if hasattr(module, "Numbers") and "apart" in module.Split._fields:
        return module.digits_from_frame
    if hasattr(module, "Numbers"):
        def with_apart(frame, pre, **options):
            """A revision before ``Split.apart`` (digits apart in the frame): its splits get an empty one."""
            found = module.digits_from_frame(frame, pre, **options)
            return found._replace(numbers=_NumbersWithApart(found.numbers) if found.numbers is not None else None)

        return with_apart

    def eager(frame, pre, **options):
        """A revision before ``Numbers`` put its number pieces in the batch (``splits``)."""
        found = module.digits_from_frame(frame, pre, **options)
        splits = getattr(found, "splits", None)
        return types.SimpleNamespace(boxes=found.boxes, batch=found.batch,
                                     numbers=_EagerNumbers(splits) if splits else None)

    return eager


class _NumbersWithApart(object):
    """An older revision's ``Numbers`` whose ``Split``s have no ``apart`` field yet: they get an empty one."""

    def __init__(self, numbers):
        self.numbers = numbers
        self.indices = numbers.indices

    def prepare(self, *args):
        if hasattr(self.numbers, "prepare"):  # (a revision before Numbers.prepare makes them in cut)
            self.numbers.prepare(*args)

    def cut(self, indices, max_digits):
        from edge_runtime.preprocess import Split

        splits, batch = self.numbers.cut(indices, max_digits)
        return [Split(split.whole, split.cuts, split.pieces, []) for split in splits], batch


class _EagerNumbers(object):
    """An older revision's number pieces, already in its batch, read through ``read_numbers``."""

    def __init__(self, splits):
        self.splits = splits
        self.indices = [split.whole for split in splits]

    def prepare(self, *args):
        """Nothing to make ahead: the pieces are in the frame's batch already."""

    def cut(self, indices, max_digits):
        """(the splits of ``indices``, no more images: theirs are in the frame's batch already)."""
        return [split for split in self.splits if split.whole in indices], np.zeros((0, 28, 28, 1), np.float32)


def one_pass(manifest, frames, detector, threads):
    """One pass over the in-memory frames through bench's threaded pipeline (same warm-up and timing
    as `make bench`) -> (FPS, p50, p99, preprocess p50, infer p50, process CPU ms per frame)."""
    runner = functools.partial(bench._threaded_pipeline, detector=detector)
    stage_ms, _, fps, cpu = bench.memory_passes(runner, manifest, frames, "onnxruntime", threads, repeats=1)
    total = stats.latency_summary(stage_ms["total"])
    return (fps[0], total["p50_ms"], total["p99_ms"], stats.median(stage_ms["preprocess"]),
            stats.median(stage_ms["infer"]), cpu[0])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", help="git revision of the old preprocess.py (default: the working tree's)")
    parser.add_argument("--model", default=os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn"))
    parser.add_argument("--old-model", help="bundle for the old side (default: --model)")
    parser.add_argument("--source", default="synthetic://")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--old-threads", type=int, default=1)
    parser.add_argument("--new-threads", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        manifest = mf.load(args.model)
        old_manifest = mf.load(args.old_model) if args.old_model else manifest
        frames = bench.frames_from_source(args.source, args.frames)
    except (mf.ManifestError, UserError) as exc:
        sys.exit("ab_detector: %s" % exc)
    from edge_runtime.preprocess import digits_from_frame

    with tempfile.TemporaryDirectory() as workdir:
        old_detector = detector_at(args.rev, workdir) if args.rev else digits_from_frame
        sides = {"old": (old_manifest, old_detector, args.old_threads),
                 "new": (manifest, digits_from_frame, args.new_threads)}
        rows = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, (side_manifest, detector, threads) in sides.items():
                row = one_pass(side_manifest, frames, detector, threads)
                rows[name].append(row)
                print("%-4s fps %4.0f  p50 %.2f  p99 %.2f  preprocess %.2f  infer %.2f  cpu %.2f ms/frame"
                      % ((name,) + row), flush=True)
    old = ", ".join(part for part in (args.rev, args.old_model) if part) or "the same code and model"
    print("medians over %d rounds (%d frames from %s, old = %s):" % (args.rounds, len(frames), args.source, old))
    for name, values in rows.items():
        a = np.array(values)
        print("%-4s fps %4.0f (%.0f-%.0f)  p50 %.2f  p99 %.2f (%.2f-%.2f)  preprocess %.2f  infer %.2f  cpu %.2f"
              % (name, np.median(a[:, 0]), a[:, 0].min(), a[:, 0].max(), np.median(a[:, 1]), np.median(a[:, 2]),
                 a[:, 2].min(), a[:, 2].max(), np.median(a[:, 3]), np.median(a[:, 4]), np.median(a[:, 5])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
