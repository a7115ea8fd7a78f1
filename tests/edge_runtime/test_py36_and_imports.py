"""Jetson constraints: edge_runtime/ parses as Python 3.6 and imports without TensorFlow, matplotlib, onnx."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLOCKED = ("tensorflow", "keras", "matplotlib", "onnx", "tf2onnx")


def _vermin_command():
    try:
        import vermin  # noqa: F401
    except ImportError:
        pytest.skip("vermin is not installed (pip install -r requirements/dev.txt)")
    script = os.path.join(os.path.dirname(sys.executable), "vermin")
    if os.path.exists(script):
        return [script]
    found = shutil.which("vermin")
    return [found] if found else [sys.executable, "-c", "import sys, vermin.main; sys.exit(vermin.main.main())"]


def test_edge_runtime_parses_as_python36():
    proc = subprocess.run(
        _vermin_command() + ["--no-tips", "--violations", "--eval-annotations", "-t=3.6-", "edge_runtime"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert proc.returncode == 0, proc.stdout
    assert "Minimum required versions: 3." in proc.stdout


BLOCKER = (
    "import sys\n"
    "for name in %r:\n"
    "    sys.modules[name] = None\n" % (BLOCKED,)
)


def _run_blocked(code):
    return subprocess.run([sys.executable, "-c", BLOCKER + code], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=120)


def test_import_and_help_without_tensorflow_matplotlib_onnx():
    code = (
        "import edge_runtime, edge_runtime.app, edge_runtime.pipeline, edge_runtime.sources, edge_runtime.outputs\n"
        "import edge_runtime.smoothing, edge_runtime.backends.onnxruntime, edge_runtime.backends.opencv_dnn\n"
        "import edge_runtime.score, edge_runtime.scenes\n"
        "from edge_runtime.__main__ import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0\n"
        "for command in ('run', 'score'):\n"
        "    try:\n"
        "        main([command, '--help'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in %r and sys.modules[m] is not None]\n"
        "assert not bad, bad\n"
        "print('OK')\n" % (BLOCKED,)
    )
    proc = _run_blocked(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip().endswith("OK") and "--source URI" in proc.stdout


def test_live_run_without_tensorflow(tiny_bundle, tmp_path):
    pytest.importorskip("edge_runtime.synthetic")
    jsonl = str(tmp_path / "o.jsonl")
    code = (
        "from edge_runtime.__main__ import main\n"
        "rc = main(['run', '--model', %r, '--source', 'synthetic://?width=320&height=240', '--headless',\n"
        "           '--max-frames', '3', '--jsonl', %r])\n"
        "assert rc == 0, rc\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in %r and sys.modules[m] is not None]\n"
        "assert not bad, bad\n" % (tiny_bundle["_dir"], jsonl, BLOCKED)
    )
    proc = _run_blocked(code)
    assert proc.returncode == 0, proc.stderr
    assert len(open(jsonl).read().splitlines()) == 3


def test_python_m_edge_runtime_help():
    proc = subprocess.run([sys.executable, "-m", "edge_runtime", "run", "--help"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "(default: auto)" in proc.stdout and "examples:" in proc.stdout
