"""`python3 -m edge_runtime run | score | bench | build-engine | verify-jetson | info`.

argparse only (no CLI dependency on the Jetson). Each subcommand lives in its own
module exposing ``add_arguments(parser)`` and ``run(args) -> int``; heavy imports
stay inside those modules' functions.
"""

import argparse
import importlib
import logging
import sys

from . import __version__
from .backends.base import BackendError
from .errors import UserError
from .manifest import ManifestError

PROG = "edge_runtime"

# subcommand -> (module, one-line help)
SUBCOMMANDS = [
    ("run", "app", "live digit recognition from a camera, video, images or synthetic://"),
    ("score", "score", "accuracy on your own labelled photos (a folder with truth.json): found, read right, failures"),
    ("bench", "bench", "latency/throughput benchmarks of backends and the whole pipeline"),
    ("build-engine", "engine_from_onnx", "build a TensorRT FP16 engine from the bundle's ONNX (on the device)"),
    ("verify-jetson", "verify_jetson", "engine vs ONNX Runtime parity on 10k digits + benchmark -> jetson-report.md"),
    ("info", "info", "Python, numpy, OpenCV (GStreamer?), backends, TensorRT, Jetson model, L4T, power mode"),
]

EPILOG = """examples:
  python3 -m edge_runtime run --model artifacts/cnn --source synthetic://
  python3 -m edge_runtime run --model artifacts/cnn --source csi://0 --serve 127.0.0.1:8080
  python3 -m edge_runtime run --model artifacts/cnn --source 'scans/*.png' --headless --jsonl out.jsonl
  python3 -m edge_runtime score --model artifacts/cnn --scenes my_photos/ --failures fails.png
  python3 -m edge_runtime build-engine --model artifacts/cnn
  python3 -m edge_runtime bench --model artifacts/cnn --backend all --out bench-out
  python3 -m edge_runtime info
"""


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Digit recognition on the Jetson Nano and any desktop.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name, help_text in SUBCOMMANDS:
        module = importlib.import_module("." + module_name, __package__)
        child = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=getattr(module, "EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(child)
        child.set_defaults(handler=module.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2) if args.verbose else logging.INFO,
        format="%(levelname).1s %(name)s: %(message)s",
    )
    try:
        return int(args.handler(args) or 0)
    except (UserError, ManifestError, BackendError) as exc:
        sys.stderr.write("%s: error: %s\n" % (PROG, exc))
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted\n" % PROG)
        return 130


if __name__ == "__main__":
    sys.exit(main())
