"""Real TensorRT + pycuda on a real NVIDIA GPU (marker `jetson`): skipped everywhere else.

Run by `make verify-jetson` (python3 -m edge_runtime verify-jetson runs `pytest -m jetson` on this file)
or directly on the device: python3 -m pytest -m jetson tests/edge_runtime/test_tensorrt_jetson.py

The model: the seeded tiny linear bundle (tests/fixtures/tiny.py) when the `onnx` package is installed,
otherwise the bundle verify-jetson is checking (NANO_DIGITS_MODEL, e.g. artifacts/cnn) with its
reference.npz. Either way the engine is built by TensorRT here and compared with ONNX Runtime's outputs.
"""

import os
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.jetson

trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed (JetPack: python3-libnvinfer)")
cuda = pytest.importorskip("pycuda.driver", reason="pycuda is not installed (scripts/setup_jetson.sh)")

from edge_runtime import engine_cache as ec  # noqa: E402
from edge_runtime import engine_from_onnx as efo  # noqa: E402
from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime.backends.base import BackendError  # noqa: E402
from edge_runtime.backends.tensorrt import TensorRTBackend  # noqa: E402
from edge_runtime.backends.trt_compat import TrtApi  # noqa: E402

if not TensorRTBackend.gpu_available():
    pytest.skip("no CUDA GPU visible to pycuda", allow_module_level=True)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """(manifest, digits float32 [N,28,28,1], ONNX Runtime probabilities [N,10])."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        onnx = None
    if onnx is not None:
        from tests.fixtures.tiny import linear_bundle, linear_reference

        manifest = linear_bundle(tmp_path_factory.mktemp("jetson") / "tiny")
        x = np.random.RandomState(0).rand(200, 28, 28, 1).astype(np.float32)
        return manifest, x, linear_reference(x).astype(np.float32)
    model = os.environ.get("NANO_DIGITS_MODEL")
    if not model:
        pytest.skip("neither the onnx package (for the tiny fixture) nor NANO_DIGITS_MODEL is available")
    from edge_runtime import verify_jetson as vj

    manifest = mf.load(model)
    images, _, probs = vj.load_reference(manifest)
    return manifest, vj.model_input(manifest, images[:512]), probs[:512]


@pytest.fixture(scope="module")
def engine(case):
    manifest = case[0]
    api = TrtApi(trt)
    facts, _, _ = ec.current_facts(manifest, api)
    path = ec.find_engine(manifest, facts) or efo.build_for_bundle(manifest, api=api)[0]
    return path


def test_engine_sidecar_describes_this_device(case, engine):
    sidecar = ec.read_sidecar(engine)
    assert sidecar["tensorrt"] == trt.__version__
    assert sidecar["gpu"]["name"] and sidecar["gpu"]["compute_capability"]
    assert sidecar["profile"]["max"] == 64 and sidecar["onnx"]["sha256"]
    with open(engine, "rb") as handle:
        plan = handle.read()
    runtime = trt.Runtime(TrtApi(trt).logger)
    assert runtime.deserialize_cuda_engine(plan) is not None  # a plain plan, as trtexec --loadEngine reads it


def test_fp16_engine_matches_onnx_runtime(case, engine):
    manifest, x, reference = case
    with TensorRTBackend(manifest, engine=engine) as net:
        probs = np.concatenate([net.infer(x[i:i + 64]) for i in range(0, len(x), 64)])
        timed, times = net.infer_timed(x[:8])
    agreement = float((probs.argmax(1) == reference.argmax(1)).mean())
    assert agreement >= 0.995, "top-1 agreement %.4f" % agreement
    assert np.abs(probs - reference).max() < 2e-2
    np.testing.assert_allclose(timed, probs[:8], atol=1e-6)
    assert set(times) >= {"h2d", "compute", "d2h", "end_to_end"}
    assert times["end_to_end"] >= times["compute"] > 0


def test_batch_limits_and_thread_ownership(case, engine):
    manifest, x, _ = case
    with TensorRTBackend(manifest, engine=engine) as net:
        assert net.max_batch == 64
        with pytest.raises(BackendError, match="larger than"):
            net.infer(np.zeros((65,) + x.shape[1:], np.float32))
        errors = []
        thread = threading.Thread(target=lambda: errors.append(_try(net.infer, x[:1])))
        thread.start()
        thread.join()
        assert errors and "thread-bound" in str(errors[0])
        assert net.infer(x[:3]).shape == (3, 10)


def test_corrupt_plan_gives_tensorrts_reason(case, engine, tmp_path):
    manifest = case[0]
    bad = tmp_path / "bad.engine"
    with open(engine, "rb") as handle:
        bad.write_bytes(handle.read()[:1000])
    mf.atomic_write_json(ec.sidecar_path(str(bad)), ec.read_sidecar(engine))
    with pytest.raises(BackendError, match="could not load engine"):
        TensorRTBackend(manifest, engine=str(bad)).activate()


def _try(function, *args):
    try:
        function(*args)
    except Exception as exc:
        return exc
    return None
