"""scripts/ab_detector.py: old vs new detection side by side through the real pipeline."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "ab_detector.py")

pytest.importorskip("onnxruntime")


def run(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True, text=True, timeout=300)


def test_both_sides_run_alternating_and_report_medians():
    done = run("--rev", "HEAD", "--frames", "4", "--rounds", "2", "--source", "synthetic://?seed=5")
    assert done.returncode == 0, done.stderr
    passes = re.findall(r"^(old|new) +fps +(\d+) +p50 ([\d.]+) +p99 ([\d.]+)", done.stdout, re.M)
    assert [p[0] for p in passes] == ["old", "new", "old", "new"]  # alternating, one line per pass
    assert all(float(p[1]) > 0 and 0 < float(p[2]) <= float(p[3]) for p in passes)
    medians = re.findall(r"^(old|new) +fps +\d+ \((\d+)-(\d+)\)", done.stdout, re.M)
    assert [m[0] for m in medians] == ["old", "new"] and all(int(m[1]) <= int(m[2]) for m in medians)
    assert "medians over 2 rounds (4 frames from synthetic://?seed=5, old = HEAD)" in done.stdout


def test_unknown_revision_is_a_clear_error():
    done = run("--rev", "no-such-revision-xyz", "--frames", "2", "--rounds", "1")
    assert done.returncode != 0
    assert "cannot read edge_runtime/preprocess.py at 'no-such-revision-xyz'" in done.stderr


def test_missing_bundle_or_source_is_a_clear_error(tmp_path):
    done = run("--rev", "HEAD", "--model", str(tmp_path / "nothing"), "--frames", "2", "--rounds", "1")
    assert done.returncode == 1 and "ab_detector: no manifest at" in done.stderr and "Traceback" not in done.stderr
    done = run("--rev", "HEAD", "--source", str(tmp_path / "none.png"), "--frames", "2", "--rounds", "1")
    assert done.returncode == 1 and "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_two_models_with_the_same_detection(tmp_path):
    bundle = os.path.join(ROOT, "tests", "fixtures", "bundles", "cnn")
    done = run("--old-model", bundle, "--frames", "3", "--rounds", "1", "--source", "synthetic://?seed=5")
    assert done.returncode == 0, done.stderr
    assert len(re.findall(r"^(old|new) +fps +\d+ +p50", done.stdout, re.M)) == 2
    assert "old = %s)" % bundle in done.stdout
    done = run("--old-model", str(tmp_path / "nothing"), "--frames", "2", "--rounds", "1")
    assert done.returncode == 1 and "ab_detector: no manifest at" in done.stderr and "Traceback" not in done.stderr
