"""The engine builder and `build-engine` CLI, against the fake TensorRT of each release."""

import os
import sys

import numpy as np
import pytest

from edge_runtime import engine_cache as ec
from edge_runtime import engine_from_onnx as efo
from edge_runtime import manifest as mf
from edge_runtime.__main__ import main
from edge_runtime.backends.trt_compat import TrtApi
from edge_runtime.errors import UserError
from tests.edge_runtime.fake_tensorrt import MAGIC, make_fake_trt
from tests.fixtures.tiny import linear_bundle, linear_onnx_bytes, linear_weights

NANO = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3", "source": "test"}
PROGRESS = "building FP16 engine (this takes a few minutes on a Nano)..."


def fp16_onnx_bytes(seed=0):
    """The tiny linear model computing in float16 with float32 I/O (like the bundle's model.fp16.onnx)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = linear_weights(seed)
    graph = helper.make_graph(
        [helper.make_node("Cast", ["image"], ["image16"], to=TensorProto.FLOAT16),
         helper.make_node("Reshape", ["image16", "flat_shape"], ["flat"]),
         helper.make_node("MatMul", ["flat", "W"], ["logits0"]),
         helper.make_node("Add", ["logits0", "B"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probs16"], axis=-1),
         helper.make_node("Cast", ["probs16"], ["probabilities"], to=TensorProto.FLOAT)],
        "tiny_linear_fp16",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28, 1])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=[numpy_helper.from_array(np.array([-1, 784], np.int64), "flat_shape"),
                     numpy_helper.from_array(w.astype(np.float16), "W"),
                     numpy_helper.from_array(b.astype(np.float16), "B")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model.SerializeToString()


def add_fp16_onnx(manifest):
    mf.atomic_write_bytes(mf.file_path(manifest, "model.fp16.onnx"), fp16_onnx_bytes())
    manifest["onnx_fp16"] = {"file": "model.fp16.onnx"}
    manifest["onnx_fp16"]["sha256"] = mf.record_file(manifest, "model.fp16.onnx")
    mf.save(manifest)
    return mf.load(manifest["_dir"])


def build(manifest, version, quiet=True, **kwargs):
    trt = make_fake_trt(version, fast_fp16=kwargs.pop("fast_fp16", True))
    api = TrtApi(trt)
    said = []
    path, sidecar = efo.build_for_bundle(manifest, api=api, gpu=NANO, say=said.append, **kwargs)
    return trt, path, sidecar, said


@pytest.mark.parametrize("version, workspace_call, fp16_flag", [
    ("8.0.1.6", ("max_workspace_size", 256 << 20), True),
    ("8.2.1.8", ("max_workspace_size", 256 << 20), True),
    ("8.6.1.6", ("set_memory_pool_limit", 0, 256 << 20), True),
    ("10.3.0.26", ("set_memory_pool_limit", 0, 256 << 20), True),
    ("11.1.0.4", ("set_memory_pool_limit", 0, 256 << 20), False),
])
def test_builder_calls_the_right_api_per_version(version, workspace_call, fp16_flag, tiny_bundle):
    manifest = add_fp16_onnx(tiny_bundle)
    trt, path, sidecar, said = build(manifest, version)
    calls = trt.fake_state.calls
    assert workspace_call in calls
    assert (("set_flag", 0) in calls) is fp16_flag
    assert ("set_shape", "image", (1, 28, 28, 1), (8, 28, 28, 1), (64, 28, 28, 1)) in calls
    assert ("create_timing_cache", b"") in calls
    assert [c for c in calls if c[0] == "build_serialized_network"] == [("build_serialized_network",)]
    assert PROGRESS in said
    # a plain plan on disk (what the builder returned, no header of ours) + the sidecar
    with open(path, "rb") as handle:
        assert handle.read().startswith(MAGIC)
    onnx_file = "model.fp16.onnx" if version.startswith("11") else "model.onnx"
    assert sidecar["onnx"] == {"file": onnx_file, "sha256": mf.sha256_file(mf.file_path(manifest, onnx_file))}
    assert sidecar["tensorrt"] == version and sidecar["gpu"]["compute_capability"] == "5.3"
    assert sidecar["precision"] == "fp16" and sidecar["fp16_kernels"] is True
    assert sidecar["profile"] == {"input": "image", "min": 1, "opt": 8, "max": 64}
    assert sidecar["workspace_mib"] == 256 and sidecar["build_seconds"] >= 0
    assert "l4t" in sidecar and sidecar["created_by"]["edge_runtime"]
    assert ec.read_sidecar(path) == sidecar
    assert os.path.basename(path) == "model.%s.engine" % sidecar["key"]


def test_strongly_typed_engine_computes_in_fp16(tiny_bundle):
    manifest = add_fp16_onnx(tiny_bundle)
    trt, path, _, _ = build(manifest, "11.1.0")
    with open(path, "rb") as handle:
        head = handle.read().split(b"\n")[1]
    assert b'"fp16": true' in head
    assert ("create_network", 1 << 1) in trt.fake_state.calls  # STRONGLY_TYPED


def test_fp32_request_sets_no_fp16_flag(tiny_bundle):
    trt, _, sidecar, said = build(tiny_bundle, "8.2.1.8", precision="fp32")
    assert ("set_flag", 0) not in trt.fake_state.calls
    assert sidecar["precision"] == "fp32" and sidecar["fp16_kernels"] is False
    assert "building FP32 engine (this takes a few minutes on a Nano)..." in said


def test_gpu_without_fast_fp16_builds_fp32_kernels_and_says_so(tiny_bundle):
    trt, _, sidecar, said = build(tiny_bundle, "8.2.1.8", fast_fp16=False)
    assert ("set_flag", 0) not in trt.fake_state.calls
    assert sidecar["fp16_kernels"] is False
    assert "this GPU has no fast FP16; building with FP32 kernels" in said


def test_timing_cache_is_reused_across_builds(tiny_bundle):
    trt, path, _, _ = build(tiny_bundle, "8.2.1.8")
    cache_file = efo.timing_cache_path(os.path.dirname(path), TrtApi(trt), NANO)
    assert os.path.basename(cache_file) == "timing.trt8.2.1.8.sm53.cache"
    with open(cache_file, "rb") as handle:
        first = handle.read()
    assert first.startswith(b"FAKETIMING 8.2.1.8 sm5.3")
    trt2, path2, _, _ = build(tiny_bundle, "8.2.1.8", profile=(1, 4, 32))
    assert path2 != path
    assert ("create_timing_cache", first) in trt2.fake_state.calls
    assert ("set_timing_cache", True) in trt2.fake_state.calls


def test_parser_errors_are_printed_and_name_the_op(tmp_path, capsys):
    folder = tmp_path / "bad"
    manifest = linear_bundle(folder)
    mf.atomic_write_bytes(mf.file_path(manifest, "model.onnx"), linear_onnx_bytes(extra_op="Tanh"))
    manifest["onnx"]["sha256"] = None
    with pytest.raises(UserError) as info:
        build(manifest, "8.2.1.8")
    assert "No importer registered for op: Tanh" in str(info.value)
    assert "operators.md" in str(info.value)
    err = capsys.readouterr().err
    assert "TensorRT ONNX parser error 1/1: In node 3 (parseGraph): UNSUPPORTED_NODE: No importer registered " \
           "for op: Tanh" in err


def test_unparseable_onnx(tiny_bundle):
    mf.atomic_write_bytes(mf.file_path(tiny_bundle, "model.onnx"), b"not an onnx model")
    tiny_bundle["onnx"]["sha256"] = None
    with pytest.raises(UserError, match="cannot parse .*Failed to parse the ONNX model"):
        build(tiny_bundle, "8.2.1.8")


def test_opset_precheck_on_8x_only(tiny_bundle):
    newer = dict(tiny_bundle, onnx=dict(tiny_bundle["onnx"], opset=17))
    with pytest.raises(UserError, match="opset 17 but TensorRT 8.2.1.8 parses opsets up to 13.*--opset 13"):
        efo.check_opset(newer, TrtApi(make_fake_trt("8.2.1.8")))
    efo.check_opset(newer, TrtApi(make_fake_trt("10.3.0")))  # newer parsers: no pre-check
    efo.check_opset(tiny_bundle, TrtApi(make_fake_trt("8.0.1")))


def test_out_of_memory_suggests_workspace_and_swap(tiny_bundle):
    trt = make_fake_trt("8.2.1.8")
    trt.fake_state.fail_build = "oom"
    with pytest.raises(UserError) as info:
        efo.build_for_bundle(tiny_bundle, api=TrtApi(trt), gpu=NANO, workspace_mib=256, say=lambda s: None)
    text = str(info.value)
    assert "ran out of memory" in text and "--workspace 128" in text and "swapon" in text
    assert "could not be allocated" in text
    assert ec.list_engines(tiny_bundle) == []  # nothing half-written


def test_memory_error_and_silent_failures_are_clear(tiny_bundle, monkeypatch):
    api = TrtApi(make_fake_trt("8.2.1.8"))

    def boom(*args):
        raise MemoryError()

    monkeypatch.setattr(api, "build_serialized", boom)
    with pytest.raises(UserError, match="could not build the engine: no message from TensorRT"):
        efo.build_for_bundle(tiny_bundle, api=api, gpu=NANO, say=lambda s: None)


def test_network_must_have_one_input_and_output(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["image"], ["a"]), helper.make_node("Identity", ["image"], ["b"])], "two",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 28, 28, 1])],
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 28, 28, 1]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 28, 28, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "two.onnx"
    path.write_bytes(model.SerializeToString())
    api = TrtApi(make_fake_trt("8.2.1.8"))
    with pytest.raises(UserError, match="1 inputs and 2 outputs"):
        efo.parse_onnx(api, api.trt.Builder(api.logger), str(path))
    assert onnx  # imported for the helper


def test_profile_shapes_need_fixed_image_dims():
    assert efo.profile_shapes((-1, 28, 28, 1), (1, 8, 64))[2] == (64, 28, 28, 1)
    with pytest.raises(UserError, match="dynamic dimensions other than the batch"):
        efo.profile_shapes((-1, -1, -1, 1), (1, 8, 64))


def test_parse_profile_argument():
    import argparse

    assert efo.parse_profile("2,16,128") == (2, 16, 128)
    with pytest.raises(argparse.ArgumentTypeError, match="expected min,opt,max"):
        efo.parse_profile("8,1,64")
    with pytest.raises(argparse.ArgumentTypeError):
        efo.parse_profile("a,b,c")


# -- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def fake_device(monkeypatch):
    trt = make_fake_trt("8.2.1.8")
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(ec, "gpu_facts", lambda sources=None: dict(NANO))
    return trt


def test_cli_builds_then_finds_then_forces(tiny_bundle, fake_device, capsys):
    folder = tiny_bundle["_dir"]
    assert main(["build-engine", "--model", folder]) == 0
    out = capsys.readouterr().out
    assert PROGRESS in out and "wrote %s" % os.path.join(folder, "engines", "model.") in out
    assert len(ec.list_engines(tiny_bundle)) == 1
    assert main(["build-engine", "--model", folder]) == 0
    assert "engine is up to date" in capsys.readouterr().out
    assert main(["build-engine", "--model", folder, "--force"]) == 0
    assert PROGRESS in capsys.readouterr().out
    assert main(["build-engine", "--model", folder, "--max-batch", "4"]) == 0
    sidecars = [ec.read_sidecar(p)["profile"] for p in ec.list_engines(tiny_bundle)]
    assert {"input": "image", "min": 1, "opt": 4, "max": 4} in sidecars and len(sidecars) == 2


def test_cli_out_and_profile(tiny_bundle, fake_device, tmp_path):
    out = str(tmp_path / "custom.engine")
    assert main(["build-engine", "--model", tiny_bundle["_dir"], "--out", out, "--profile", "2,16,128",
                 "--precision", "fp32"]) == 0
    sidecar = ec.read_sidecar(out)
    assert sidecar["profile"]["min"] == 2 and sidecar["profile"]["max"] == 128 and sidecar["precision"] == "fp32"


def test_cli_bad_input_exits_2_with_a_message(tiny_bundle, fake_device, capsys):
    assert main(["build-engine", "--model", tiny_bundle["_dir"], "--workspace", "0"]) == 2
    assert "--workspace must be at least 1 MiB" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["build-engine", "--model", tiny_bundle["_dir"], "--profile", "8,1,64"])
    assert info.value.code == 2
    assert "expected min,opt,max" in capsys.readouterr().err


def test_cli_without_tensorrt_says_what_works_instead(tiny_bundle, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    assert main(["build-engine", "--model", tiny_bundle["_dir"]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("edge_runtime: error: TensorRT is not installed")
    assert "sudo apt-get install python3-libnvinfer" in err and "--backend onnxruntime" in err
    assert "Traceback" not in err


def test_build_for_bundle_imports_tensorrt_itself(tiny_bundle, fake_device):
    path, sidecar = efo.build_for_bundle(tiny_bundle, say=lambda s: None)
    assert sidecar["tensorrt"] == "8.2.1.8" and sidecar["gpu"]["name"] == NANO["name"]
    assert ec.find_engine(tiny_bundle, ec.sidecar_facts(sidecar)) == path


def test_help_shows_defaults_and_examples(capsys):
    for command, expected in [("build-engine", ["default: 1,8,64", "(default: 256)", "(default: fp16)",
                                                "python3 -m edge_runtime build-engine --model artifacts/cnn"]),
                              ("verify-jetson", ["(default: 99.95)", "(default: 0.1)", "(default: tensorrt)",
                                                 "Exit status: 0 all targets met, 1 a target"])]:
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        out = " ".join(capsys.readouterr().out.split())
        for text in expected:
            assert text in out, (command, text)
