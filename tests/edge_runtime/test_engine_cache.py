"""Engine cache: device facts, key, sidecar, lookup, user engines, describe_cache."""

import json
import os
import subprocess
import sys

import pytest

from edge_runtime import engine_cache as ec
from edge_runtime import manifest as mf
from edge_runtime.backends.trt_compat import TrtApi
from edge_runtime.errors import UserError
from tests.edge_runtime.fake_tensorrt import make_fake_trt

NANO = {"name": "NVIDIA Tegra X1", "compute_capability": "5.3", "source": "test"}


def facts(**changes):
    base = ec.key_facts("ab" * 32, "8.2.1.8", NANO, "fp16", (1, 8, 64))
    base.update(changes)
    return base


# -- device facts ---------------------------------------------------------------------------


def test_l4t_release_parsed(tmp_path):
    path = tmp_path / "nv_tegra_release"
    path.write_text("# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat\n")
    assert ec.l4t_release(str(path)) == "R32.7.1"
    path.write_text("garbage\n")
    assert ec.l4t_release(str(path)) is None
    assert ec.l4t_release(str(tmp_path / "missing")) is None


def test_gpu_facts_first_source_that_answers_wins():
    def broken():
        raise RuntimeError("no driver")

    got = ec.gpu_facts([("a", broken), ("b", lambda: {"name": "GPU B", "compute_capability": "8.7"}),
                        ("c", lambda: {"name": "GPU C", "compute_capability": "5.3"})])
    assert got == {"name": "GPU B", "compute_capability": "8.7", "source": "b"}


def test_gpu_facts_never_raises_and_says_what_was_tried():
    def broken():
        raise OSError()

    got = ec.gpu_facts([("pycuda", broken), ("nvidia-smi", broken)])
    assert got["name"] is None and got["source"] is None
    assert got["error"] == "pycuda: OSError; nvidia-smi: OSError"
    assert ec.gpu_facts([])["error"] == "no GPU probe"


def test_nvidia_smi_probe_parses_name_and_compute_capability():
    seen = {}

    def runner(argv, **kwargs):
        seen["argv"] = argv
        return "NVIDIA H100 80GB HBM3, 9.0\n"

    assert ec._gpu_from_nvidia_smi(runner) == {"name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0"}
    assert "--query-gpu=name,compute_cap" in seen["argv"]
    with pytest.raises(RuntimeError, match="no compute capability"):
        ec._gpu_from_nvidia_smi(lambda argv, **kw: "Old GPU, [Not Supported]\n")


def test_device_tree_probe_knows_the_nano(tmp_path):
    (tmp_path / "compatible").write_bytes(b"nvidia,p3450-0000\0nvidia,jetson-nano\0nvidia,tegra210\0")
    assert ec._gpu_from_device_tree(str(tmp_path)) == {"name": "NVIDIA Tegra X1", "compute_capability": "5.3"}
    (tmp_path / "compatible").write_bytes(b"raspberrypi,4-model-b\0brcm,bcm2711\0")
    with pytest.raises(RuntimeError, match="unknown Jetson SoC"):
        ec._gpu_from_device_tree(str(tmp_path))


def test_pycuda_probe(monkeypatch):
    import types

    from tests.edge_runtime.fake_tensorrt import FakeCuda

    cuda = FakeCuda(device_name="Orin", compute_capability=(8, 7))
    pycuda = types.ModuleType("pycuda")
    pycuda.driver = cuda
    monkeypatch.setitem(sys.modules, "pycuda", pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", cuda)
    assert ec._gpu_from_pycuda() == {"name": "Orin", "compute_capability": "8.7"}
    cuda.devices = 0
    with pytest.raises(RuntimeError, match="no CUDA device"):
        ec._gpu_from_pycuda()


# -- keys and sidecars ----------------------------------------------------------------------------


def test_cache_key_is_stable_and_changes_with_every_fact():
    key = ec.cache_key(facts())
    assert key == ec.cache_key(facts()) and len(key) == 16
    variants = [facts(onnx_sha256="cd" * 32), facts(tensorrt="8.0.1.6"), facts(gpu_name="Orin"),
                facts(compute_capability="8.7"), facts(precision="fp32"), facts(profile=[1, 8, 128])]
    keys = {ec.cache_key(v) for v in variants}
    assert key not in keys and len(keys) == len(variants)


@pytest.mark.parametrize("profile", [(0, 8, 64), (1, 9, 8), (1, 8), "abc", None])
def test_bad_profiles_are_user_errors(profile):
    with pytest.raises(UserError, match="profile"):
        ec.check_profile(profile)


def test_sidecar_path_next_to_engine():
    assert ec.sidecar_path("/x/model.abc.engine") == "/x/model.abc.json"
    assert ec.sidecar_path("/x/model.plan") == "/x/model.json"
    assert ec.sidecar_path("/x/model.bin") == "/x/model.bin.json"


def test_sidecar_roundtrip_keeps_key_facts(tmp_path):
    wanted = facts()
    engine = tmp_path / "model.engine"
    sidecar = ec.make_sidecar(wanted, "model.onnx", engine, NANO, 12.345678, 256, "image", True, l4t="R32.7.1",
                              created_by={"edge_runtime": "0.1.0"})
    mf.atomic_write_json(ec.sidecar_path(engine), sidecar)
    back = ec.read_sidecar(engine)
    assert ec.sidecar_facts(back) == wanted
    assert back["build_seconds"] == 12.346 and back["l4t"] == "R32.7.1" and back["fp16_kernels"] is True
    assert back["profile"] == {"input": "image", "min": 1, "opt": 8, "max": 64}
    assert back["key"] == ec.cache_key(wanted)
    (tmp_path / "model.json").write_text("{broken")
    assert ec.read_sidecar(engine) is None
    (tmp_path / "model.json").write_text("[1, 2]")
    assert ec.read_sidecar(engine) is None


def test_mismatch_message_names_both_sides():
    differences = ec.mismatches(facts(tensorrt="8.0.1.6", gpu_name="Xavier"), facts())
    assert [d[0] for d in differences] == ["tensorrt", "gpu_name"]
    text = ec.explain_mismatch(differences)
    assert text == ("TensorRT: engine built with 8.0.1.6, now 8.2.1.8; "
                    "GPU: engine built with Xavier, now NVIDIA Tegra X1")
    assert "abababababab..." in ec.explain_mismatch(ec.mismatches(facts(), facts(onnx_sha256="cd" * 32)))
    assert "min/opt/max 1/8/64" in ec.explain_mismatch(ec.mismatches(facts(), facts(profile=[1, 8, 128])))
    assert "unknown" in ec.explain_mismatch(ec.mismatches(facts(compute_capability=None), facts()))


# -- lookup ---------------------------------------------------------------------------------


def put_engine(manifest, wanted, data=b"plan", name=None):
    path = os.path.join(ec.engines_dir(manifest), name) if name else ec.engine_path_for(manifest, wanted)
    mf.atomic_write_bytes(path, data)
    mf.atomic_write_json(ec.sidecar_path(path), ec.make_sidecar(wanted, "model.onnx", path, {
        "name": wanted["gpu_name"], "compute_capability": wanted["compute_capability"]}, 1.0, 256, "image", True))
    return path


def test_find_engine_exact_and_any_profile(tiny_bundle):
    wanted = facts()
    assert ec.find_engine(tiny_bundle, wanted) is None
    put_engine(tiny_bundle, facts(profile=[1, 4, 16]))
    other_profile = put_engine(tiny_bundle, facts(profile=[1, 4, 32]))
    assert ec.find_engine(tiny_bundle, wanted) is None
    assert ec.find_engine(tiny_bundle, wanted, any_profile=True) == other_profile  # the largest max batch
    exact = put_engine(tiny_bundle, wanted)
    assert ec.find_engine(tiny_bundle, wanted) == exact
    assert ec.find_engine(tiny_bundle, wanted, any_profile=True) == exact
    os.remove(ec.sidecar_path(exact))  # an engine without its sidecar is not trusted
    assert ec.find_engine(tiny_bundle, wanted) is None


def test_user_engine_checks(tiny_bundle, tmp_path):
    wanted = facts()
    with pytest.raises(UserError, match="does not exist; build one with: python3 -m edge_runtime build-engine"):
        ec.check_user_engine(str(tmp_path / "nope.engine"), wanted, tiny_bundle)
    bare = tmp_path / "bare.engine"
    bare.write_bytes(b"plan")
    with pytest.raises(UserError, match="no readable sidecar.*TensorRT 8.2.1.8, GPU NVIDIA Tegra X1"):
        ec.check_user_engine(str(bare), wanted, tiny_bundle)
    old = put_engine(tiny_bundle, facts(tensorrt="8.0.1.6"), name="old.engine")
    with pytest.raises(UserError) as info:
        ec.check_user_engine(old, wanted, tiny_bundle)
    text = str(info.value)
    assert "TensorRT: engine built with 8.0.1.6, now 8.2.1.8" in text
    assert "rebuild: python3 -m edge_runtime build-engine --model %s" % tiny_bundle["_dir"] in text
    good = put_engine(tiny_bundle, facts(profile=[1, 1, 1]), name="mine.engine")
    assert ec.check_user_engine(good, wanted, tiny_bundle)["profile"]["max"] == 1


def test_onnx_choice(tiny_bundle):
    name, digest = ec.onnx_choice(tiny_bundle, "fp16", strongly_typed_only=False)
    assert name == "model.onnx" and digest == tiny_bundle["onnx"]["sha256"]
    with pytest.raises(UserError, match="TensorRT 11\\+ builds FP16 engines only from an FP16 ONNX"):
        ec.onnx_choice(tiny_bundle, "fp16", strongly_typed_only=True)
    assert ec.onnx_choice(tiny_bundle, "fp32", strongly_typed_only=True)[0] == "model.onnx"
    m = dict(tiny_bundle, onnx_fp16={"file": "model.fp16.onnx"})
    with pytest.raises(UserError, match="model.fp16.onnx is missing"):
        ec.onnx_choice(m, "fp16", strongly_typed_only=True)
    with open(mf.file_path(m, "model.fp16.onnx"), "wb") as handle:
        handle.write(b"fp16 bytes")
    assert ec.onnx_choice(m, "fp16", True)[1] == mf.sha256_file(mf.file_path(m, "model.fp16.onnx"))


def test_resolve_engine_cached_built_or_refused(tiny_bundle):
    api = TrtApi(make_fake_trt("8.2.1.8"))
    wanted, _, _ = ec.current_facts(tiny_bundle, api, "fp16", ec.DEFAULT_PROFILE, NANO)
    built = []
    said = []

    def builder(manifest, **kwargs):
        built.append(kwargs)
        return put_engine(manifest, wanted), {}

    with pytest.raises(UserError) as info:
        ec.resolve_engine(tiny_bundle, api, build=False, gpu=NANO)
    assert "--no-build" in str(info.value) and "no engines in" in str(info.value)
    path = ec.resolve_engine(tiny_bundle, api, gpu=NANO, builder=builder, say=said.append)
    assert built[0]["profile"] == ec.DEFAULT_PROFILE and built[0]["precision"] == "fp16"
    assert "building one" in said[0]
    assert ec.resolve_engine(tiny_bundle, api, gpu=NANO, builder=builder) == path and len(built) == 1
    assert ec.resolve_engine(tiny_bundle, api, engine=path, gpu=NANO) == path
    stale = put_engine(tiny_bundle, facts(tensorrt="8.0.1.6", onnx_sha256=wanted["onnx_sha256"]), name="old.engine")
    os.remove(path)
    with pytest.raises(UserError) as info:
        ec.resolve_engine(tiny_bundle, api, build=False, gpu=NANO)
    assert "old.engine (TensorRT: engine built with 8.0.1.6, now 8.2.1.8)" in str(info.value)
    assert os.path.exists(stale)
    ec.resolve_engine(tiny_bundle, api, gpu=NANO, builder=builder, say=said.append)  # e.g. after a JetPack upgrade
    assert said[-1].startswith("cached old.engine does not fit (TensorRT: engine built with 8.0.1.6, now 8.2.1.8); "
                               "building one")


def test_describe_cache(tiny_bundle, monkeypatch):
    api = TrtApi(make_fake_trt("8.2.1.8"))
    assert ec.describe_cache(tiny_bundle, api=api, gpu=NANO) == []
    wanted, _, _ = ec.current_facts(tiny_bundle, api, "fp16", ec.DEFAULT_PROFILE, NANO)
    put_engine(tiny_bundle, wanted, name="a.engine")
    put_engine(tiny_bundle, dict(wanted, gpu_name="Orin", compute_capability="8.7"), name="b.engine")
    mf.atomic_write_bytes(os.path.join(ec.engines_dir(tiny_bundle), "c.engine"), b"plan")
    items = {i["file"]: i for i in ec.describe_cache(tiny_bundle, api=api, gpu=NANO)}
    assert items["a.engine"]["matches"] is True and items["a.engine"]["max_batch"] == 64
    assert items["b.engine"]["matches"] is False
    assert "GPU: engine built with Orin, now NVIDIA Tegra X1" in items["b.engine"]["reason"]
    assert items["c.engine"]["matches"] is False and "no sidecar c.json" in items["c.engine"]["reason"]
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # no TensorRT here: listed, match unknown
    items = {i["file"]: i for i in ec.describe_cache(tiny_bundle)}
    assert items["a.engine"]["matches"] is None
    assert items["a.engine"]["reason"].startswith("cannot check here: TensorRT is not installed")


def test_engine_cache_imports_without_tensorrt():
    code = ("import sys; sys.modules['tensorrt'] = None; sys.modules['tensorflow'] = None; "
            "import edge_runtime.engine_cache, edge_runtime.engine_from_onnx, edge_runtime.verify_jetson, "
            "edge_runtime.backends.tensorrt; print('ok')")
    out = subprocess.check_output([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__)))), universal_newlines=True)
    assert out.strip() == "ok"


def test_sidecar_is_plain_json_and_plan_untouched(tiny_bundle):
    path = put_engine(tiny_bundle, facts(), data=b"\x00PLAN")
    with open(path, "rb") as handle:
        assert handle.read() == b"\x00PLAN"  # no header prepended: trtexec --loadEngine must load it
    with open(ec.sidecar_path(path)) as handle:
        assert json.load(handle)["format"] == ec.SIDECAR_FORMAT


def test_shared_engine_arguments():
    import argparse

    parser = argparse.ArgumentParser()
    ec.add_engine_args(parser)
    assert ec.engine_options(parser.parse_args([])) == {"engine": None, "build": True}
    args = parser.parse_args(["--engine", "a.engine", "--no-build"])
    assert ec.engine_options(args) == {"engine": "a.engine", "build": False}
    assert ec.engine_options(argparse.Namespace()) == {"engine": None, "build": True}
    assert "matching engine in <model>/engines/" in parser.format_help()
