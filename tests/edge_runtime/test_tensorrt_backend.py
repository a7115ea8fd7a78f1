"""TensorRTBackend around the fake TensorRT + fake pycuda: API per version, buffers, context, errors."""

import json
import sys
import threading
import types

import numpy as np
import pytest

from edge_runtime import engine_cache as ec
from edge_runtime import engine_from_onnx as efo
from edge_runtime.backends import auto_order, create_backend
from edge_runtime.backends.base import BackendError
from edge_runtime.backends.tensorrt import TensorRTBackend
from edge_runtime.backends.trt_compat import TrtApi
from edge_runtime.errors import UserError
from tests.edge_runtime.fake_tensorrt import FakeCuda, make_fake_trt
from tests.fixtures.tiny import linear_reference

NANO = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3", "source": "test"}
VERSIONS = ["8.0.1.6", "8.2.1.8", "8.6.1.6", "10.3.0.26", "11.1.0.4"]


def digits(n, seed=0):
    return np.random.RandomState(seed).rand(n, 28, 28, 1).astype(np.float32)


def device(version="8.2.1.8", cc="5.3"):
    cuda = FakeCuda(compute_capability=tuple(int(p) for p in cc.split(".")))
    return make_fake_trt(version, compute_capability=cc, cuda=cuda), cuda


def backend(manifest, trt, cuda, **kwargs):
    kwargs.setdefault("precision", "fp32" if trt.__version__.startswith("11") else "fp16")
    return TensorRTBackend(manifest, trt_module=trt, cuda_module=cuda, gpu=kwargs.pop("gpu", NANO), **kwargs)


def prebuild(manifest, trt, gpu=NANO, **kwargs):
    kwargs.setdefault("precision", "fp16")
    return efo.build_for_bundle(manifest, api=TrtApi(trt), gpu=gpu, say=lambda s: None, **kwargs)


@pytest.mark.parametrize("version", VERSIONS)
def test_parity_and_api_per_version(version, tiny_bundle):
    trt, cuda = device(version)
    x = digits(20)
    with backend(tiny_bundle, trt, cuda) as net:
        assert net.max_batch == 64 and net.min_batch == 1
        assert cuda.stack() == [net._ctx] and cuda.contexts_made == 1
        probs = net.infer(x)
        assert id(net._host_in) in cuda.pinned and id(net._host_out) in cuda.pinned
        buffers = list(net._buffers)
        ctx = net._ctx
    np.testing.assert_allclose(probs, linear_reference(x), atol=1e-3)
    assert (probs.argmax(1) == linear_reference(x).argmax(1)).all()
    names = [c[0] for c in trt.fake_state.calls]
    if version < "8.5" and version.startswith("8."):
        assert ("set_binding_shape", 0, (20, 28, 28, 1)) in trt.fake_state.calls and "execute_async_v2" in names
        assert "execute_async_v3" not in names
    else:
        assert ("set_input_shape", "image", (20, 28, 28, 1)) in trt.fake_state.calls and "execute_async_v3" in names
        assert "execute_async_v2" not in names
    assert cuda.stack() == [] and ctx.detached and all(b.freed for b in buffers)
    assert ["htod", "dtoh", "synchronize"] == [c for c in cuda.calls if c != "init"][-3:]


def test_engine_is_built_once_then_reused(tiny_bundle):
    trt, cuda = device()
    with backend(tiny_bundle, trt, cuda) as net:
        first = net.engine_path
    with backend(tiny_bundle, trt, cuda) as net:
        assert net.engine_path == first
    assert [c[0] for c in trt.fake_state.calls].count("build_serialized_network") == 1
    assert net.describe()["engine"] == first and net.describe()["tensorrt"] == "8.2.1.8"


def test_infer_timed_reports_trtexec_stage_names(tiny_bundle):
    trt, cuda = device("8.6.1")
    with backend(tiny_bundle, trt, cuda) as net:
        probs, times = net.infer_timed(digits(8))
    assert probs.shape == (8, 10)
    assert set(times) == {"h2d", "compute", "d2h", "end_to_end", "wall"}
    assert all(v >= 0 for v in times.values())
    assert times["end_to_end"] >= times["compute"]
    with pytest.raises(BackendError, match="not active"):
        net.infer_timed(digits(1))


def test_batch_larger_than_profile_and_empty_batch(tiny_bundle):
    trt, cuda = device()
    with backend(tiny_bundle, trt, cuda) as net:
        with pytest.raises(BackendError, match="batch of 65 is larger than this tensorrt backend's maximum of 64"):
            net.infer(digits(65))
        assert net.infer(digits(0)).shape == (0, 10)
        assert net.infer(digits(1)[0]).shape == (1, 10)  # a single sample gets a batch axis


def test_profile_minimum_is_padded(tiny_bundle):
    trt, cuda = device()
    prebuild(tiny_bundle, trt, profile=(2, 4, 8))
    x = digits(1)
    with backend(tiny_bundle, trt, cuda) as net:  # any cached profile will do
        assert (net.min_batch, net.max_batch) == (2, 8)
        probs = net.infer(x)
    assert probs.shape == (1, 10)
    np.testing.assert_allclose(probs, linear_reference(x), atol=1e-3)
    assert ("set_binding_shape", 0, (2, 28, 28, 1)) in trt.fake_state.calls


def test_cuda_calls_from_another_thread_are_refused(tiny_bundle):
    trt, cuda = device()
    net = backend(tiny_bundle, trt, cuda).activate()
    errors = []

    def worker():
        for call in (lambda: net.infer(digits(2)), net.deactivate):
            try:
                call()
            except BackendError as exc:
                errors.append(str(exc))

    thread = threading.Thread(target=worker, name="grabber")
    thread.start()
    thread.join()
    assert len(errors) == 2
    assert "used from thread 'grabber'" in errors[0] and "thread-bound" in errors[0]
    assert net.infer(digits(2)).shape == (2, 10)  # the owner thread still works
    net.deactivate()
    assert cuda.stack() == []


def test_corrupt_plan_is_a_clear_error_and_releases_the_context(tiny_bundle):
    trt, cuda = device()
    path, _ = prebuild(tiny_bundle, trt)
    with open(path, "wb") as handle:
        handle.write(b"\x00garbage")
    net = backend(tiny_bundle, trt, cuda)
    with pytest.raises(BackendError) as info:
        net.activate()
    text = str(info.value)
    assert "TensorRT 8.2.1.8 could not load engine %s" % path in text
    assert "Magic tag does not match" in text and "Engine deserialization failed" in text
    assert "python3 -m edge_runtime build-engine --model %s --force" % tiny_bundle["_dir"] in text
    assert cuda.stack() == [] and not net.is_active


def test_truncated_plan(tiny_bundle):
    trt, cuda = device()
    path, _ = prebuild(tiny_bundle, trt)
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])
    with pytest.raises(BackendError, match="Serialization assertion"):
        backend(tiny_bundle, trt, cuda).activate()


def lie_in_sidecar(path, **changes):
    sidecar = ec.read_sidecar(path)
    for key, value in changes.items():
        if key == "cc":
            sidecar["gpu"]["compute_capability"] = value
        else:
            sidecar[key] = value
    with open(ec.sidecar_path(path), "w") as handle:
        json.dump(sidecar, handle)


def test_plan_from_another_tensorrt_version_quotes_tensorrt(tiny_bundle, tmp_path):
    old_trt, _ = device("8.0.1.6")
    path, _ = prebuild(tiny_bundle, old_trt, out=str(tmp_path / "copied.engine"))
    lie_in_sidecar(path, tensorrt="8.2.1.8")  # a sidecar that lies: TensorRT itself must catch it
    trt, cuda = device("8.2.1.8")
    with pytest.raises(BackendError, match="expecting library version 8.2.1.8 got 8.0.1.6, please rebuild"):
        backend(tiny_bundle, trt, cuda, engine=path).activate()
    assert cuda.stack() == []


def test_plan_from_another_gpu_quotes_tensorrt(tiny_bundle, tmp_path):
    xavier_trt, _ = device("8.2.1.8", cc="7.2")
    path, _ = prebuild(tiny_bundle, xavier_trt, gpu={"name": "Xavier", "compute_capability": "7.2"},
                       out=str(tmp_path / "xavier.engine"))
    lie_in_sidecar(path, cc="5.3")
    sidecar = ec.read_sidecar(path)
    sidecar["gpu"]["name"] = NANO["name"]
    with open(ec.sidecar_path(path), "w") as handle:
        json.dump(sidecar, handle)
    trt, cuda = device("8.2.1.8", cc="5.3")
    with pytest.raises(BackendError, match="incompatible device, expecting compute 5.3 got compute 7.2"):
        backend(tiny_bundle, trt, cuda, engine=path).activate()


def test_user_engine_with_honest_sidecar_is_refused_before_any_gpu_work(tiny_bundle, tmp_path):
    old_trt, _ = device("8.0.1.6")
    path, _ = prebuild(tiny_bundle, old_trt, out=str(tmp_path / "old.engine"))
    trt, cuda = device("8.2.1.8")
    with pytest.raises(UserError) as info:
        backend(tiny_bundle, trt, cuda, engine=path).activate()
    assert "TensorRT: engine built with 8.0.1.6, now 8.2.1.8" in str(info.value)
    assert "rebuild: python3 -m edge_runtime build-engine --model" in str(info.value)
    assert cuda.contexts_made == 0


def test_no_build_without_engine(tiny_bundle):
    trt, cuda = device()
    with pytest.raises(UserError, match="--no-build"):
        backend(tiny_bundle, trt, cuda, build=False).activate()
    assert cuda.contexts_made == 0


def test_engine_input_must_match_the_manifest(tiny_bundle):
    trt, cuda = device()
    prebuild(tiny_bundle, trt)
    other = dict(tiny_bundle, input=dict(tiny_bundle["input"], shape=[-1, 28, 28, 3]))
    with pytest.raises(BackendError, match="takes \\[-1, 28, 28, 1\\] but the manifest says \\[N, 28, 28, 3\\]"):
        backend(other, trt, cuda).activate()
    assert cuda.stack() == []


def test_engine_with_extra_outputs_or_no_context(tiny_bundle, monkeypatch):
    trt, cuda = device()
    prebuild(tiny_bundle, trt)
    real_io = TrtApi.io_tensors
    monkeypatch.setattr(TrtApi, "io_tensors", lambda self, engine: real_io(self, engine) * 2)
    with pytest.raises(BackendError, match="has 2 inputs and 2 outputs; expected 1 and 1"):
        backend(tiny_bundle, trt, cuda).activate()
    monkeypatch.setattr(TrtApi, "deserialize", lambda self, runtime, data: types.SimpleNamespace(
        create_execution_context=lambda: None))
    with pytest.raises(BackendError, match="could not create an execution context"):
        backend(tiny_bundle, trt, cuda).activate()
    assert cuda.stack() == []


def install_fake_modules(monkeypatch, trt=None, cuda=None):
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setitem(sys.modules, "pycuda", pycuda if cuda is not None else None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)


def test_gpu_available_and_auto_order(monkeypatch):
    install_fake_modules(monkeypatch)
    assert TensorRTBackend.gpu_available() is False
    assert "tensorrt" not in auto_order()
    trt, cuda = device()
    install_fake_modules(monkeypatch, trt, cuda)
    assert TensorRTBackend.gpu_available() is True
    assert auto_order()[0] == "tensorrt"
    cuda.devices = 0
    assert TensorRTBackend.gpu_available() is False
    assert "tensorrt" not in auto_order()


def test_auto_picks_tensorrt_and_passes_engine_options(tiny_bundle, monkeypatch):
    trt, cuda = device()
    install_fake_modules(monkeypatch, trt, cuda)
    monkeypatch.setattr(ec, "gpu_facts", lambda sources=None: dict(NANO))
    with create_backend(tiny_bundle, prefer="auto", build=True) as net:
        assert net.name == "tensorrt"
        assert net.infer(digits(3)).shape == (3, 10)
    with pytest.raises(UserError, match="--no-build"):
        create_backend(dict(tiny_bundle, _dir=str(tiny_bundle["_dir"]) + "-copy"), prefer="tensorrt",
                       build=False).activate()


def test_requesting_tensorrt_without_it_names_working_backends(tiny_bundle, monkeypatch):
    install_fake_modules(monkeypatch)
    with pytest.raises(BackendError) as info:
        create_backend(tiny_bundle, prefer="tensorrt")
    assert "cannot import tensorrt, pycuda" in str(info.value)
    assert "--backend onnxruntime" in str(info.value)
