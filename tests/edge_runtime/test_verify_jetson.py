"""verify-jetson on CPU: ONNX Runtime (or the fake TensorRT) stands in for TensorRT, so the whole flow,
the report files and the pass/fail exit status are exercised without a GPU."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from edge_runtime import manifest as mf
from edge_runtime import verify_jetson as vj
from edge_runtime.__main__ import main
from edge_runtime.backends.base import Backend
from edge_runtime.errors import UserError

NANO = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3", "source": "test"}


def add_reference(manifest, n=300, seed=1, wrong_labels=0.1):
    """reference.npz like convert/verify.py writes it: digits, labels, ONNX Runtime probabilities."""
    import onnxruntime

    rng = np.random.RandomState(seed)
    images = (rng.rand(n, 28, 28) * 255).astype(np.uint8)
    session = onnxruntime.InferenceSession(mf.onnx_path(manifest), providers=["CPUExecutionProvider"])
    probs = session.run(None, {"image": vj.model_input(manifest, images)})[0].astype(np.float32)
    labels = probs.argmax(axis=1).astype(np.int64)
    flip = rng.rand(n) < wrong_labels  # a model that is not perfect: ~90 % accuracy
    labels[flip] = (labels[flip] + 1) % 10
    path = mf.file_path(manifest, "reference.npz")
    np.savez_compressed(path, images=images, labels=labels, onnx_probabilities=probs)
    manifest["reference"] = {"file": "reference.npz", "count": n}
    mf.record_file(manifest, "reference.npz")
    mf.save(manifest)
    return mf.load(manifest["_dir"]), labels


class Perturbed(Backend):
    """Wraps a backend and changes the top-1 class of every ``every``-th sample (a bad engine)."""

    name = "perturbed"

    def __init__(self, inner, every):
        Backend.__init__(self, inner.manifest)
        self.inner = inner
        self.every = every
        self.max_batch = 64
        self.seen = 0

    def activate_impl(self):
        self.inner.activate()

    def deactivate_impl(self):
        self.inner.deactivate()

    def infer_impl(self, batch):
        probs = self.inner.infer(batch).copy()
        for i in range(len(batch)):
            if (self.seen + i) % self.every == 0:
                probs[i] = np.roll(probs[i], 1)
        self.seen += len(batch)
        return probs


@pytest.fixture
def bundle(tiny_bundle, monkeypatch):
    monkeypatch.setattr(vj, "environment_block", lambda: {"host": "ci"})
    manifest, _ = add_reference(tiny_bundle)
    return manifest


def cli(bundle, out, *extra):
    return main(["verify-jetson", "--model", bundle["_dir"], "--out", str(out), "--iterations", "3",
                 "--warmup", "1", "--no-pytest"] + list(extra))


def read_report(out):
    with open(os.path.join(str(out), "jetson-report.json")) as handle:
        report = json.load(handle)
    with open(os.path.join(str(out), "jetson-report.md")) as handle:
        return report, handle.read()


def test_dry_run_with_onnx_runtime_passes_and_writes_both_reports(bundle, tmp_path, capsys):
    assert cli(bundle, tmp_path, "--backend", "onnxruntime") == 0
    report, markdown = read_report(tmp_path)
    comp = report["comparison"]
    assert comp["count"] == 300 and comp["top1_agreement_pct"] == 100.0 and comp["disagreements"] == 0
    assert 80.0 < comp["accuracy_pct"] < 95.0 and comp["accuracy_drop_points"] == 0.0
    assert comp["max_abs_diff"] < 1e-5
    assert report["passed"] is True and [c["passed"] for c in report["checks"]] == [True, True]
    assert [row["batch"] for row in report["benchmark"]] == [1, 8, 64]
    assert all(row["p50_ms"] > 0 and row["p99_ms"] >= row["p50_ms"] for row in report["benchmark"])
    assert report["backend"]["backend"] == "onnxruntime"
    assert markdown.startswith("## verify-jetson: PASS (tiny)")
    assert "onnxruntime (dry run: NOT a TensorRT verification)" in markdown
    assert "| top-1 agreement with ONNX Runtime (%) | 100.0000 | >= 99.95 | pass |" in markdown
    out = capsys.readouterr().out
    assert "top-1 agreement 100.000 % (0 disagreements)" in out and "PASS: wrote" in out


def test_a_bad_engine_fails_the_targets_and_exits_1(bundle, tmp_path, capsys):
    from edge_runtime.backends import create_backend

    def open_bad(manifest, args):
        return Perturbed(create_backend(manifest, prefer="onnxruntime"), every=50)

    args = _args(bundle, tmp_path)
    assert vj.run(args, open_backend=open_bad) == 1
    report, markdown = read_report(tmp_path)
    assert report["comparison"]["disagreements"] == 6  # samples 0, 50, ..., 250
    assert report["comparison"]["top1_agreement_pct"] == pytest.approx(98.0)
    assert report["passed"] is False and report["checks"][0]["passed"] is False
    assert markdown.startswith("## verify-jetson: FAIL")
    assert "| **FAIL** |" in markdown
    assert "targets failed: top-1 agreement" in capsys.readouterr().err


def _args(bundle, out, *extra):
    import argparse

    parser = argparse.ArgumentParser()
    vj.add_arguments(parser)
    return parser.parse_args(["--model", bundle["_dir"], "--out", str(out), "--iterations", "2", "--warmup", "0",
                              "--no-pytest"] + list(extra))


def test_whole_flow_through_the_tensorrt_backend_on_fake_tensorrt(bundle, tmp_path):
    from edge_runtime.backends.tensorrt import TensorRTBackend
    from tests.edge_runtime.fake_tensorrt import FakeCuda, make_fake_trt

    cuda = FakeCuda()
    trt = make_fake_trt("8.2.1.8", cuda=cuda)

    def open_trt(manifest, args):
        return TensorRTBackend(manifest, trt_module=trt, cuda_module=cuda, gpu=NANO, engine=args.engine,
                               build=not args.no_build)

    assert vj.run(_args(bundle, tmp_path, "--batches", "1,8,64,128"), open_backend=open_trt) == 0
    report, markdown = read_report(tmp_path)
    assert report["backend"]["backend"] == "tensorrt" and report["backend"]["tensorrt"] == "8.2.1.8"
    assert report["backend"]["sidecar"]["precision"] == "fp16"
    assert report["comparison"]["top1_agreement_pct"] == 100.0  # FP16-rounded outputs, same top-1
    assert 0 < report["comparison"]["max_abs_diff"] < 1e-3
    rows = {row["batch"]: row for row in report["benchmark"]}
    assert rows[64]["compute_p50_ms"] >= 0 and rows[1]["h2d_p50_ms"] >= 0
    assert rows[128]["skipped"] == "larger than the backend's max batch 64"
    assert "| 128 | skipped: larger than the backend's max batch 64 |" in markdown
    assert "| backend | tensorrt |" in markdown and "| TensorRT / pycuda | 8.2.1.8 / - |" in markdown
    assert cuda.stack() == []


def test_compare_and_judge_numbers():
    onnx = np.eye(10, dtype=np.float32)[[0, 1, 2, 3]]
    engine = onnx.copy()
    engine[3] = np.eye(10, dtype=np.float32)[4] * 0.9
    labels = np.array([0, 1, 2, 3])
    comp = vj.compare(engine, onnx, labels)
    assert comp["top1_agreement_pct"] == 75.0 and comp["disagreements"] == 1
    assert comp["accuracy_pct"] == 75.0 and comp["onnx_accuracy_pct"] == 100.0
    assert comp["accuracy_drop_points"] == 25.0
    assert comp["max_abs_diff"] == pytest.approx(1.0) and comp["mean_abs_diff"] == pytest.approx(1.9 / 40)
    checks = vj.judge(comp)
    assert [c["passed"] for c in checks] == [False, False]
    ok = vj.judge(dict(comp, top1_agreement_pct=99.95, accuracy_drop_points=0.1))
    assert [c["passed"] for c in ok] == [True, True]
    assert [c["passed"] for c in vj.judge(dict(comp, top1_agreement_pct=99.94, accuracy_drop_points=0.11))] == [
        False, False]


def test_model_input_layouts_and_empty_inference():
    images = np.full((2, 28, 28), 255, np.uint8)
    nhwc = {"preprocess": {"scale": 1 / 255.0}, "input": {"layout": "NHWC"}}
    nchw = {"preprocess": {"scale": 1 / 255.0}, "input": {"layout": "NCHW"}}
    assert vj.model_input(nhwc, images).shape == (2, 28, 28, 1)
    assert vj.model_input(nchw, images).shape == (2, 1, 28, 28)
    assert vj.model_input(nhwc, images).max() == pytest.approx(1.0)

    class Net(object):
        num_classes = 10

    assert vj.infer_all(Net(), np.zeros((0, 28, 28, 1), np.float32), 8).shape == (0, 10)


def test_bad_inputs_exit_2(tiny_bundle, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(vj, "environment_block", lambda: {})
    assert cli(tiny_bundle, tmp_path, "--backend", "onnxruntime") == 2
    assert "has no reference.npz" in capsys.readouterr().err
    manifest, _ = add_reference(tiny_bundle, n=20)
    assert cli(manifest, tmp_path, "--batches", "1,x") == 2
    assert "--batches must be positive integers" in capsys.readouterr().err
    assert cli(manifest, tmp_path, "--iterations", "0") == 2
    assert cli(manifest, tmp_path / "missing-folder", "--backend", "onnxruntime") == 2
    assert "is not a folder" in capsys.readouterr().err
    os.remove(mf.file_path(manifest, "reference.npz"))
    assert cli(manifest, tmp_path, "--backend", "onnxruntime") == 2
    assert "reference.npz is missing" in capsys.readouterr().err


def test_reference_file_missing_without_a_recorded_hash(tiny_bundle):
    manifest = dict(tiny_bundle, reference={"file": "gone.npz"})
    with pytest.raises(UserError, match="gone.npz is missing; copy the whole bundle again"):
        vj.load_reference(manifest)


def test_broken_reference_files(tiny_bundle):
    manifest, _ = add_reference(tiny_bundle, n=10)
    path = mf.file_path(manifest, "reference.npz")
    np.savez(path, images=np.zeros((10, 28, 28), np.uint8), labels=np.zeros(9, np.int64),
             onnx_probabilities=np.zeros((10, 10), np.float32))
    with pytest.raises(mf.ManifestError, match="sha256 mismatch"):
        vj.load_reference(manifest)
    mf.record_file(manifest, "reference.npz")
    with pytest.raises(UserError, match="inconsistent: 10 images, 9 labels"):
        vj.load_reference(manifest)
    np.savez(path, images=np.zeros((10, 28, 28), np.uint8))
    mf.record_file(manifest, "reference.npz")
    with pytest.raises(UserError, match="lacks labels, onnx_probabilities"):
        vj.load_reference(manifest)


class FakeProc(object):
    def __init__(self, rc, out, hang=False):
        self.returncode = rc
        self.out = out
        self.hang = hang
        self.killed = False

    def communicate(self, timeout=None):
        if self.hang and not self.killed:
            raise subprocess.TimeoutExpired("pytest", timeout)
        return self.out, None

    def kill(self):
        self.killed = True


@pytest.mark.parametrize("rc, last, status", [
    (0, "1 passed, 1 skipped in 3.2s", "passed"),
    (0, "2 skipped in 0.1s", "skipped"),
    (1, "1 failed, 1 passed in 9.0s", "failed"),
    (5, "no tests ran in 0.01s", "not run"),
    (5, "1 skipped in 0.32s", "skipped"),
])
def test_run_jetson_tests_statuses(rc, last, status):
    seen = {}

    def popen(argv, **kwargs):
        seen.update(argv=argv, cwd=kwargs["cwd"], model=kwargs["env"].get("NANO_DIGITS_MODEL"))
        return FakeProc(rc, "....\n===== %s =====\n" % last)

    result = vj.run_jetson_tests(popen=popen, model="artifacts/cnn")
    assert seen["model"] == os.path.abspath("artifacts/cnn")
    assert result["status"] == status and result["rc"] == rc and result["summary"] == last
    assert seen["argv"][1:5] == ["-m", "pytest", "-m", "jetson"] and seen["argv"][-1] == vj.JETSON_TESTS
    assert seen["cwd"] == vj.project_root()


def test_run_jetson_tests_when_absent_or_hung(tmp_path, monkeypatch):
    assert vj.run_jetson_tests(root=str(tmp_path))["status"] == "not run"
    result = vj.run_jetson_tests(popen=lambda argv, **kw: FakeProc(None, "", hang=True), timeout=1)
    assert result["status"] == "failed" and "timed out" in result["summary"]
    monkeypatch.setitem(sys.modules, "pytest", None)
    assert "pytest is not installed" in vj.run_jetson_tests()["summary"]


def test_failed_jetson_tests_fail_the_report(bundle):
    from edge_runtime.backends import create_backend

    with create_backend(bundle, prefer="onnxruntime") as net:
        report = vj.verify(bundle, net, batches=(1,), iterations=1, warmup=0, limit=50, environment={},
                           jetson_tests={"status": "failed", "rc": 1, "summary": "1 failed"})
    assert report["comparison"]["count"] == 50
    assert report["passed"] is False and report["checks"][-1]["check"] == "jetson pytest tests"


def test_cli_runs_the_jetson_tests_first(bundle, tmp_path, monkeypatch):
    order = []
    monkeypatch.setattr(vj, "run_jetson_tests", lambda model: order.append("pytest") or {
        "status": "skipped", "rc": 0, "summary": "2 skipped"})
    args = _args(bundle, tmp_path)
    args.no_pytest = False
    args.backend = "onnxruntime"
    real_open = vj.open_net
    assert vj.run(args, open_backend=lambda m, a: order.append("backend") or real_open(m, a)) == 0
    assert order == ["pytest", "backend"]
    report, markdown = read_report(tmp_path)
    assert report["jetson_tests"]["summary"] == "2 skipped" and "skipped: 2 skipped" in markdown


def test_open_net_asks_the_registry_for_tensorrt_with_engine_options(bundle, tmp_path, monkeypatch):
    import edge_runtime.backends as registry

    seen = {}
    monkeypatch.setattr(registry, "create_backend", lambda m, prefer, **kw: seen.update(prefer=prefer, **kw))
    vj.open_net(bundle, _args(bundle, tmp_path, "--engine", "x.engine", "--no-build"))
    assert seen == {"prefer": "tensorrt", "engine": "x.engine", "build": False}


def test_markdown_shows_the_jetson_environment(bundle):
    from edge_runtime.backends import create_backend

    env = {"jetson": {"model": "NVIDIA Jetson Nano Developer Kit", "l4t": "32.7.1",
                      "power_mode": {"name": "MAXN", "id": 0}, "clocks": {"pinned": True}},
           "tensorrt_details": {"tensorrt": "8.2.1.8", "pycuda": "2020.1", "gpu": "NVIDIA Tegra X1",
                                "compute_capability": "5.3"}}
    with create_backend(bundle, prefer="onnxruntime") as net:
        report = vj.verify(bundle, net, batches=(1,), iterations=1, warmup=0, environment=env)
    markdown = vj.render_markdown(report)
    assert "| device | NVIDIA Jetson Nano Developer Kit |" in markdown
    assert "| L4T | 32.7.1 |" in markdown and "| power mode (nvpmodel -q) | MAXN 0 |" in markdown
    assert "| clocks | {\"pinned\": true} |" in markdown
    assert "| TensorRT / pycuda | 8.2.1.8 / 2020.1 |" in markdown
    assert "| GPU | NVIDIA Tegra X1 (compute 5.3) |" in markdown


def test_environment_block_never_raises():
    env = vj.environment_block()
    assert "tensorrt_details" in env and "python" in env
