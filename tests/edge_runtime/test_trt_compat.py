"""Version dispatch of backends/trt_compat.py against each release's API surface (fake_tensorrt)."""

import sys

import numpy as np
import pytest

from edge_runtime.backends import trt_compat
from edge_runtime.backends.base import BackendError
from edge_runtime.backends.trt_compat import TrtApi, parse_version
from tests.edge_runtime.fake_tensorrt import FakeCuda, make_fake_trt

VERSIONS = ["8.0.1.6", "8.2.1.8", "8.6.1.6", "10.3.0.26", "11.1.0.4"]


@pytest.mark.parametrize("text, expected", [
    ("8.2.1.8", (8, 2, 1, 8)), ("10.3.0.post1", (10, 3, 0)), (" 11.0", (11, 0)), ("v8.0.1", (8, 0, 1)),
])
def test_parse_version_gives_int_tuples(text, expected):
    assert parse_version(text) == expected


def test_versions_compare_as_numbers_not_strings():
    assert parse_version("10.0.1") > parse_version("8.6.1")
    assert "10.0.1" < "8.6.1"  # the string comparison this module exists to avoid


def test_parse_version_rejects_garbage():
    with pytest.raises(ValueError):
        parse_version("unknown")


@pytest.mark.parametrize("version, surface", [
    ("8.2.1.8", {"binding": True, "tensor": False, "pool": False, "fp16": True, "strong": False}),
    ("8.4.3", {"binding": True, "tensor": False, "pool": True, "fp16": True, "strong": False}),
    ("8.6.1", {"binding": True, "tensor": True, "pool": True, "fp16": True, "strong": False}),
    ("10.3.0", {"binding": False, "tensor": True, "pool": True, "fp16": True, "strong": True}),
    ("11.1.0", {"binding": False, "tensor": True, "pool": True, "fp16": False, "strong": True}),
])
def test_fake_surfaces_match_the_release_tables(version, surface):
    trt = make_fake_trt(version)
    config = trt.Builder(None).create_builder_config()
    assert hasattr(config, "max_workspace_size") is surface["binding"]
    assert hasattr(config, "set_memory_pool_limit") is surface["pool"]
    assert hasattr(trt, "MemoryPoolType") is surface["pool"]
    assert hasattr(trt, "TensorIOMode") is surface["tensor"]
    assert hasattr(trt.BuilderFlag, "FP16") is surface["fp16"]
    assert hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED") is surface["strong"]


def test_too_old_tensorrt_is_refused_with_advice():
    with pytest.raises(BackendError, match="needs TensorRT 8.0 or newer"):
        TrtApi(make_fake_trt("7.1.3"))


def test_unreadable_version_is_refused():
    trt = make_fake_trt("8.2.1")
    trt.__version__ = "dev"
    with pytest.raises(BackendError, match="cannot read the TensorRT version"):
        TrtApi(trt)


@pytest.mark.parametrize("version, flags", [
    ("8.0.1.6", 1 << 0), ("8.2.1.8", 1 << 0), ("8.6.1.6", 1 << 0), ("10.3.0.26", 0), ("11.1.0.4", 1 << 1),
])
def test_create_network_flags_per_version(version, flags):
    trt = make_fake_trt(version)
    api = TrtApi(trt)
    network = api.create_network(trt.Builder(api.logger))
    assert network.flags == flags


@pytest.mark.parametrize("version, call", [
    ("8.0.1.6", ("max_workspace_size", 256 << 20)),
    ("8.2.1.8", ("max_workspace_size", 256 << 20)),
    ("8.4.1", ("set_memory_pool_limit", 0, 256 << 20)),
    ("8.6.1.6", ("set_memory_pool_limit", 0, 256 << 20)),
    ("10.3.0.26", ("set_memory_pool_limit", 0, 256 << 20)),
    ("11.1.0.4", ("set_memory_pool_limit", 0, 256 << 20)),
])
def test_workspace_setting_per_version(version, call):
    trt = make_fake_trt(version)
    api = TrtApi(trt)
    config = trt.Builder(api.logger).create_builder_config()
    api.set_workspace(config, 256 << 20)
    assert trt.fake_state.calls[-1] == call
    assert config.workspace == 256 << 20


@pytest.mark.parametrize("version", VERSIONS[:4])
def test_fp16_uses_builder_flag_before_11(version):
    trt = make_fake_trt(version, fast_fp16=True)
    api = TrtApi(trt)
    builder = trt.Builder(api.logger)
    config = builder.create_builder_config()
    assert api.platform_has_fast_fp16(builder) is True
    api.enable_fp16(config)
    assert config.get_flag(trt.BuilderFlag.FP16)


def test_fp16_flag_is_refused_on_11_which_has_none():
    trt = make_fake_trt("11.1.0")
    api = TrtApi(trt)
    builder = trt.Builder(api.logger)
    assert api.strongly_typed_only
    assert api.platform_has_fast_fp16(builder) is None
    with pytest.raises(BackendError, match="no BuilderFlag.FP16"):
        api.enable_fp16(builder.create_builder_config())


def test_platform_without_fast_fp16_is_reported():
    trt = make_fake_trt("8.2.1", fast_fp16=False)
    api = TrtApi(trt)
    assert api.platform_has_fast_fp16(trt.Builder(api.logger)) is False


def test_timing_cache_roundtrip_and_mismatch_restart():
    trt = make_fake_trt("8.2.1")
    api = TrtApi(trt)
    config = trt.Builder(api.logger).create_builder_config()
    assert api.use_timing_cache(config, b"") is True
    data = api.timing_cache_bytes(config)
    assert data.startswith(b"FAKETIMING 8.2.1")
    other = trt.Builder(api.logger).create_builder_config()
    assert api.use_timing_cache(other, data) is True
    stale = trt.Builder(api.logger).create_builder_config()
    assert api.use_timing_cache(stale, b"FAKETIMING 8.0.1 sm53") is False  # replaced by a fresh cache
    assert stale.timing_cache is not None and stale.timing_cache.data.startswith(b"FAKETIMING 8.2.1")


def test_timing_cache_bytes_empty_without_cache():
    trt = make_fake_trt("8.2.1")
    api = TrtApi(trt)
    assert api.timing_cache_bytes(trt.Builder(api.logger).create_builder_config()) == b""


def _built_engine(trt, tmp_path, tiny_bundle):
    from edge_runtime import engine_from_onnx as efo

    api = TrtApi(trt)
    gpu = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3"}
    precision = "fp32" if api.strongly_typed_only else "fp16"
    path, _ = efo.build_for_bundle(tiny_bundle, api=api, precision=precision, gpu=gpu, say=lambda s: None)
    with open(path, "rb") as handle:
        return api, api.deserialize(trt.Runtime(api.logger), handle.read())


@pytest.mark.parametrize("version, api_kind", [
    ("8.0.1.6", "bindings"), ("8.2.1.8", "bindings"), ("8.6.1.6", "tensors"), ("10.3.0.26", "tensors"),
    ("11.1.0.4", "tensors"),
])
def test_io_and_execution_use_bindings_before_85_and_names_after(version, api_kind, tmp_path, tiny_bundle):
    cuda = FakeCuda()
    trt = make_fake_trt(version, cuda=cuda)
    api, engine = _built_engine(trt, tmp_path, tiny_bundle)
    tensors = api.io_tensors(engine)
    assert [(t.name, t.is_input, t.shape) for t in tensors] == [
        ("image", True, (-1, 28, 28, 1)), ("probabilities", False, (-1, 10))]
    assert tensors[0].dtype == np.float32
    assert api.profile_shapes(engine, tensors[0]) == ((1, 28, 28, 1), (8, 28, 28, 1), (64, 28, 28, 1))
    context = engine.create_execution_context()
    cuda.Device(0).make_context()
    d_in, d_out = cuda.mem_alloc(3 * 784 * 4), cuda.mem_alloc(3 * 10 * 4)
    x = np.random.RandomState(0).rand(3, 28, 28, 1).astype(np.float32)
    cuda.write(int(d_in), x)
    api.set_input_shape(context, tensors[0], (3, 28, 28, 1))
    api.execute_async(context, tensors, [d_in, d_out], 0)
    out = cuda.read(int(d_out), (3, 10), np.float32)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-3)
    names = [c[0] for c in trt.fake_state.calls]
    if api_kind == "bindings":
        assert "set_binding_shape" in names and "execute_async_v2" in names
        assert "execute_async_v3" not in names
    else:
        assert "set_input_shape" in names and "execute_async_v3" in names
        assert "execute_async_v2" not in names


def test_shape_outside_profile_is_a_clear_error(tmp_path, tiny_bundle):
    trt = make_fake_trt("8.2.1.8", cuda=FakeCuda())
    api, engine = _built_engine(trt, tmp_path, tiny_bundle)
    tensors = api.io_tensors(engine)
    with pytest.raises(BackendError, match="refused input shape \\[65, 28, 28, 1\\].*--max-batch"):
        api.set_input_shape(engine.create_execution_context(), tensors[0], (65, 28, 28, 1))


def test_failed_enqueue_is_an_error():
    api = TrtApi(make_fake_trt("8.6.1"))

    class Context(object):
        def set_tensor_address(self, name, address):
            pass

        def execute_async_v3(self, stream):
            return False

    tensors = [trt_compat.IOTensor("image", 0, True, (-1, 28, 28, 1), np.float32)]
    with pytest.raises(BackendError, match="failed to enqueue"):
        api.execute_async(Context(), tensors, [1], 0)
    assert "IOTensor('image'" in repr(tensors[0])


def test_recording_logger_keeps_errors_and_is_one_per_module():
    trt = make_fake_trt("8.2.1")
    api = TrtApi(trt)
    assert TrtApi(trt).logger is api.logger
    mark = api.logger.mark()
    api.logger.log(trt.ILogger.Severity.INFO, "building")
    api.logger.log(trt.ILogger.Severity.ERROR, "plan is bad")
    api.logger.log(trt.ILogger.Severity.WARNING, "careful")
    assert api.logger.since(mark) == ["plan is bad", "careful"]
    assert api.logger.since(mark, levels=("INFO",)) == ["building"]
    api.logger.log(99, "from a severity this module does not know")
    assert api.logger.since(mark, levels=("INFO",))[-1] == "from a severity this module does not know"


def test_opset_limit_only_on_8x():
    assert trt_compat.max_opset_for((8, 2, 1)) == 13
    assert trt_compat.max_opset_for((10, 3)) is None
    assert TrtApi(make_fake_trt("8.0.1")).max_opset == 13


@pytest.mark.parametrize("cc, fast", [("5.3", True), ("6.2", True), ("7.2", True), ("8.7", True), ("5.2", False),
                                      ("6.1", False), (None, None), ("x.y", None)])
def test_fast_fp16_table(cc, fast):
    assert trt_compat.fast_fp16_for(cc) is fast


def test_import_tensorrt_missing_names_alternatives_and_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError) as info:
        trt_compat.import_tensorrt()
    text = str(info.value)
    assert "sudo apt-get install python3-libnvinfer" in text
    assert "--system-site-packages" in text
    assert "--backend onnxruntime" in text


def test_import_cuda_missing_explains(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycuda", None)
    monkeypatch.setitem(sys.modules, "pycuda.driver", None)
    with pytest.raises(BackendError, match="pycuda is not installed.*setup_jetson.sh"):
        trt_compat.import_cuda()


def test_other_backends_text_when_none(monkeypatch):
    import edge_runtime.backends as registry

    monkeypatch.setattr(registry, "available_backends", lambda: ["tensorrt"])
    assert "No other backend" in trt_compat.other_backends_text()


def test_describe_without_tensorrt_never_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "pycuda", None)
    facts = trt_compat.describe()
    assert facts["tensorrt"] is None and facts["pycuda"] is None
    assert any(e.startswith("tensorrt:") for e in facts["errors"])
    assert any(e.startswith("pycuda:") for e in facts["errors"])


def test_describe_with_tensorrt_and_pycuda(monkeypatch):
    import types

    from edge_runtime import engine_cache

    pycuda = types.ModuleType("pycuda")
    pycuda.VERSION_TEXT = "2020.1"
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt("8.2.1.8"))
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setattr(engine_cache, "gpu_facts",
                        lambda: {"name": "NVIDIA Tegra X1", "compute_capability": "5.3", "source": "test"})
    facts = trt_compat.describe()
    assert facts["tensorrt"] == "8.2.1.8" and facts["tensorrt_api"].startswith("bindings")
    assert facts["pycuda"] == "2020.1"
    assert facts["gpu"] == "NVIDIA Tegra X1" and facts["fast_fp16"] is True
    assert facts["errors"] == []
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_trt("10.3.0"))
    monkeypatch.setattr(engine_cache, "gpu_facts", lambda: {"name": None, "compute_capability": None,
                                                            "error": "no GPU probe answered"})
    facts = trt_compat.describe()
    assert facts["tensorrt_api"].startswith("tensor names")
    assert facts["errors"] == ["gpu: no GPU probe answered"]
