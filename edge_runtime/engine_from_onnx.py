"""`python3 -m edge_runtime build-engine`: ONNX -> TensorRT plan, built on the device that runs it.

Runs under Python 3.6 with only tensorrt and numpy (JetPack 4.6: TensorRT 8.0.1 / 8.2.1).
Steps (version-specific calls live in backends/trt_compat.py):

1. pre-check the bundle's ONNX opset against what this TensorRT parses (<= 13 on 8.x);
2. parse the ONNX into an explicit-batch network (TensorRT 11+: strongly typed, from model.fp16.onnx),
   printing every parser error;
3. FP16 (BuilderFlag.FP16 when the GPU has fast FP16, TensorRT < 11), a dynamic-batch
   optimisation profile (1/8/64 by default), a workspace limit (256 MiB by default);
4. reuse a timing cache across builds (engines/timing.<trt>.<gpu>.cache);
5. write the plan atomically (a plain plan: `trtexec --loadEngine` loads it) and a sidecar JSON.
"""

import logging
import os
import platform
import sys
import time

from . import __version__
from . import engine_cache as ec
from . import manifest as mf
from .errors import UserError

log = logging.getLogger(__name__)

DEFAULT_WORKSPACE_MIB = 256

EPILOG = """examples:
  python3 -m edge_runtime build-engine --model artifacts/cnn
  python3 -m edge_runtime build-engine --model artifacts/cnn --max-batch 128 --workspace 128
  python3 -m edge_runtime build-engine --model artifacts/cnn --precision fp32 --out /tmp/cnn.engine

The engine is written to <model>/engines/model.<key>.engine with a .json sidecar; the key covers the
ONNX sha256, TensorRT version, GPU, precision and batch profile, so `run` finds it automatically.
Build on the device that runs the engine: plans do not move between TensorRT versions or GPUs.
"""

_OOM_WORDS = ("out of memory", "outofmemory", "insufficient memory", "could not be allocated",
              "cudaerrormemoryallocation", "failed to allocate")


def _say(text):
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def parse_profile(text):
    """'1,8,64' -> (1, 8, 64) (argparse type)."""
    import argparse

    try:
        return ec.check_profile([int(v) for v in str(text).split(",")])
    except (ValueError, UserError) as exc:
        raise argparse.ArgumentTypeError("%s (expected min,opt,max like 1,8,64)" % exc)


def check_opset(manifest, api):
    opset = manifest.get("onnx", {}).get("opset")
    limit = api.max_opset
    if opset is not None and limit is not None and int(opset) > limit:
        raise UserError("bundle %s has ONNX opset %s but TensorRT %s parses opsets up to %d; re-export with "
                        "`python -m convert export --opset 13` on the workstation"
                        % (mf.bundle_dir(manifest), opset, api.version_string, limit))


def parser_errors(parser):
    return [str(parser.get_error(i)) for i in range(parser.num_errors)]


def parse_onnx(api, builder, onnx_path):
    """(network, parser); UserError listing every parser error (unsupported ops are named there)."""
    network = api.create_network(builder)
    parser = api.trt.OnnxParser(network, api.logger)
    with open(onnx_path, "rb") as handle:
        data = handle.read()
    if not parser.parse(data):
        errors = parser_errors(parser) or ["(the parser gave no reason)"]
        for i, text in enumerate(errors):
            sys.stderr.write("TensorRT ONNX parser error %d/%d: %s\n" % (i + 1, len(errors), text))
        raise UserError("TensorRT %s cannot parse %s: %s. Check the ops above against the onnx-tensorrt operator "
                        "list for this TensorRT (docs/operators.md) and re-export with opset 13"
                        % (api.version_string, onnx_path, errors[0]))
    if network.num_inputs != 1 or network.num_outputs != 1:
        raise UserError("%s has %d inputs and %d outputs; this toolkit expects one image input and one "
                        "probabilities output" % (onnx_path, network.num_inputs, network.num_outputs))
    return network, parser


def profile_shapes(input_shape, profile):
    """[-1, 28, 28, 1] + (1, 8, 64) -> three full shapes."""
    rest = tuple(int(d) for d in input_shape[1:])
    if any(d < 1 for d in rest):
        raise UserError("the ONNX input has dynamic dimensions other than the batch (%s); export a fixed "
                        "28x28 input" % (list(input_shape),))
    return tuple((n,) + rest for n in profile)


def timing_cache_path(folder, api, gpu):
    cc = (gpu.get("compute_capability") or "unknown").replace(".", "")
    return os.path.join(folder, "timing.trt%s.sm%s.cache" % (api.version_string, cc))


def read_bytes(path):
    if path and os.path.exists(path):
        with open(path, "rb") as handle:
            return handle.read()
    return b""


def build_failure(api, mark, workspace_mib):
    """The UserError for build_serialized_network returning None, quoting TensorRT's log."""
    said = api.logger.since(mark)
    text = " | ".join(said[-5:]) or "no message from TensorRT"
    if any(word in " ".join(said).lower() for word in _OOM_WORDS):
        return UserError("TensorRT ran out of memory while building (%s). Try a smaller workspace "
                         "(--workspace %d), close other GPU programs, and add a swap file on the Nano "
                         "(sudo fallocate -l 4G /swapfile && sudo mkswap /swapfile && sudo swapon /swapfile)"
                         % (text, max(32, workspace_mib // 2)))
    return UserError("TensorRT could not build the engine: %s" % text)


def engine_from_onnx(onnx_path, engine_path, api, precision="fp16", profile=ec.DEFAULT_PROFILE,
                     workspace_mib=DEFAULT_WORKSPACE_MIB, timing_cache=None, say=_say):
    """Build and atomically write a plan; return (input name, fp16 kernels used, build seconds)."""
    trt = api.trt
    builder = trt.Builder(api.logger)
    network, _parser = parse_onnx(api, builder, onnx_path)
    config = builder.create_builder_config()
    api.set_workspace(config, int(workspace_mib) << 20)
    fp16_kernels = False
    if precision == "fp16":
        if api.strongly_typed_only:
            fp16_kernels = True  # the FP16 ONNX carries the types
        elif api.platform_has_fast_fp16(builder):
            api.enable_fp16(config)
            fp16_kernels = True
        else:
            say("this GPU has no fast FP16; building with FP32 kernels")
    tensor = network.get_input(0)
    low, opt, high = profile_shapes(tuple(tensor.shape), profile)
    api.add_profile(builder, config, tensor.name, low, opt, high)
    if timing_cache is not None:
        api.use_timing_cache(config, read_bytes(timing_cache))
    say("building %s engine (this takes a few minutes on a Nano)..." % ("FP16" if fp16_kernels else "FP32"))
    mark = api.logger.mark()
    started = time.time()
    try:
        plan = api.build_serialized(builder, network, config)
    except MemoryError:
        plan = None
    seconds = time.time() - started
    if plan is None:
        raise build_failure(api, mark, workspace_mib)
    mf.atomic_write_bytes(engine_path, plan)
    if timing_cache is not None:
        mf.atomic_write_bytes(timing_cache, api.timing_cache_bytes(config))
    return tensor.name, fp16_kernels, seconds


def build_for_bundle(manifest, api=None, precision="fp16", profile=ec.DEFAULT_PROFILE,
                     workspace_mib=DEFAULT_WORKSPACE_MIB, out=None, gpu=None, say=_say):
    """Build the bundle's engine into the cache (or ``out``); return (engine path, sidecar dict)."""
    if api is None:
        from .backends.trt_compat import TrtApi, import_tensorrt

        api = TrtApi(import_tensorrt())
    check_opset(manifest, api)
    facts, onnx_file, gpu = ec.current_facts(manifest, api, precision, profile, gpu)
    engine_path = out or ec.engine_path_for(manifest, facts)
    folder = os.path.dirname(os.path.abspath(engine_path))
    name, fp16_kernels, seconds = engine_from_onnx(
        mf.file_path(manifest, onnx_file), engine_path, api, precision=precision, profile=facts["profile"],
        workspace_mib=workspace_mib, timing_cache=timing_cache_path(folder, api, gpu), say=say)
    sidecar = ec.make_sidecar(facts, onnx_file, engine_path, gpu, seconds, workspace_mib, name, fp16_kernels,
                              l4t=ec.l4t_release(),
                              created_by={"edge_runtime": __version__, "python": platform.python_version()})
    mf.atomic_write_json(ec.sidecar_path(engine_path), sidecar)
    say("wrote %s (%.1f s, TensorRT %s, %s, batch %d..%d) and %s" % (
        engine_path, seconds, api.version_string, precision.upper(), facts["profile"][0], facts["profile"][2],
        os.path.basename(ec.sidecar_path(engine_path))))
    return engine_path, sidecar


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def add_arguments(parser):
    parser.add_argument("--model", default="artifacts/cnn",
                        help="bundle folder or its manifest.json (default: %(default)s)")
    parser.add_argument("--precision", choices=ec.PRECISIONS, default=ec.DEFAULT_PRECISION,
                        help="engine precision (default: %(default)s)")
    parser.add_argument("--profile", type=parse_profile, default=ec.DEFAULT_PROFILE, metavar="MIN,OPT,MAX",
                        help="dynamic batch optimisation profile (default: 1,8,64)")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="shortcut: set the profile's max batch (default: from --profile)")
    parser.add_argument("--workspace", type=int, default=DEFAULT_WORKSPACE_MIB, metavar="MIB",
                        help="builder workspace limit in MiB (default: %(default)s)")
    parser.add_argument("--out", default=None, help="write the engine here instead of <model>/engines/ "
                        "(default: the cache)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a matching engine exists")


def run(args, api=None):
    profile = tuple(args.profile)
    if args.max_batch is not None:
        low, opt, _ = profile
        profile = ec.check_profile((min(low, args.max_batch), min(opt, args.max_batch), args.max_batch))
    if args.workspace < 1:
        raise UserError("--workspace must be at least 1 MiB, got %d" % args.workspace)
    manifest = mf.load(args.model)
    if api is None:
        from .backends.trt_compat import TrtApi, import_tensorrt

        api = TrtApi(import_tensorrt())
    if not args.force and not args.out:
        facts, _, _ = ec.current_facts(manifest, api, args.precision, profile)
        found = ec.find_engine(manifest, facts)
        if found:
            _say("engine is up to date: %s (use --force to rebuild)" % found)
            return 0
    build_for_bundle(manifest, api=api, precision=args.precision, profile=profile, workspace_mib=args.workspace,
                     out=args.out)
    return 0
