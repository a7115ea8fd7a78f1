"""`python3 -m edge_runtime run`: live digit recognition from any source URI.

Reusable argument groups (``add_source_args``, ``add_model_args``, ``add_output_args``,
``add_recognition_args``) so `bench` and other subcommands accept the same flags.
"""

import argparse
import contextlib
import logging
import signal
import sys
import threading

from .cli_types import non_negative_int, positive_int, probability
from .errors import UserError

LOG = logging.getLogger(__name__)

DEFAULT_MODEL = "artifacts/cnn"
DEFAULT_SERVE = "127.0.0.1:8080"

EPILOG = """sources (--source):
  auto                    a camera if there is one (CSI on a Jetson, else /dev/video0), else synthetic://
  csi://0?width=1280&height=720&fps=60&flip=0    Jetson CSI camera (needs OpenCV with GStreamer)
  /dev/video0, v4l2:///dev/video0?width=640&height=480   USB camera
  rtsp://host:8554/stream  network camera
  clip.mp4 | photo.png | scans/ | 'scans/*.png'   files (every frame/image, in order)
  synthetic://?digits=6&seed=1&fps=30            built-in virtual camera with ground truth

without a display (no DISPLAY, e.g. over ssh) the run is headless; if no output is
given it serves the annotated stream on http://127.0.0.1:8080/ (ssh -L 8080:127.0.0.1:8080 nano)
and prints a status line every 2 s. Ctrl-C or SIGTERM stops cleanly and prints a summary.

examples:
  python3 -m edge_runtime run --model artifacts/cnn --source synthetic://
  python3 -m edge_runtime run --model artifacts/cnn --source csi://0 --serve 127.0.0.1:8080
  python3 -m edge_runtime run --model artifacts/cnn --source /dev/video0 --save out.mp4 --roi 100,80,440,320
  python3 -m edge_runtime run --model artifacts/cnn --source 'scans/*.png' --headless --jsonl out.jsonl
  python3 -m edge_runtime run --model artifacts/cnn --source synthetic:// --headless --max-frames 300
"""


# --------------------------------------------------------------------------
# argparse type= validators
# --------------------------------------------------------------------------


def roi_box(text):
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or values[0] < 0 or values[1] < 0 or values[2] < 1 or values[3] < 1:
        raise argparse.ArgumentTypeError(
            "expected x,y,w,h in pixels with w,h >= 1 (e.g. 100,80,440,320), got %r" % text)
    return tuple(values)


def host_port(text):
    from .outputs import parse_host_port

    try:
        return parse_host_port(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc))


def non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number, got %r" % text)
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number >= 0, got %s" % text)
    return value


# --------------------------------------------------------------------------
# argument groups
# --------------------------------------------------------------------------


def add_source_args(parser):
    group = parser.add_argument_group("source")
    group.add_argument("--source", default="auto", metavar="URI",
                       help="csi://N, /dev/videoN, v4l2:///dev/videoN, rtsp://..., video file, image, folder, "
                            "glob, synthetic://, or auto (default: %(default)s)")
    return group


def add_model_args(parser):
    from .backends import CHOICES
    from .backends.onnxruntime import PRECISIONS as ORT_PRECISIONS

    group = parser.add_argument_group("model")
    group.add_argument("--model", default=DEFAULT_MODEL, metavar="BUNDLE",
                       help="bundle folder or its manifest.json (default: %(default)s)")
    group.add_argument("--backend", default="auto", choices=CHOICES,
                       help="inference backend; auto = tensorrt if usable, else onnxruntime, else opencv "
                            "(default: %(default)s)")
    group.add_argument("--ort-provider", default="cpu", choices=("cpu", "cuda", "tensorrt"),
                       help="ONNX Runtime execution provider (default: %(default)s)")
    group.add_argument("--threads", type=non_negative_int, default=1, metavar="N",
                       help="ONNX Runtime intra-op threads; 0 = ONNX Runtime's choice (default: %(default)s)")
    group.add_argument("--ort-precision", default="auto", choices=ORT_PRECISIONS,
                       help="ONNX Runtime model: fp32 = model.onnx, int8 = model.int8.onnx; auto = int8 on the CPU "
                            "provider where the CPU has int8 dot products (VNNI, Arm dot product) and the bundle's "
                            "INT8 model passed its parity check, else fp32 (default: %(default)s)")
    return group


def add_recognition_args(parser):
    group = parser.add_argument_group("recognition")
    group.add_argument("--roi", type=roi_box, default=None, metavar="X,Y,W,H",
                       help="only look for digits inside this rectangle (default: whole frame)")
    group.add_argument("--polarity", default="auto", choices=("auto", "dark", "light"),
                       help="ink darker than the paper (dark), lighter (light: chalk on a board, white on "
                            "black) or judged per frame (default: %(default)s)")
    group.add_argument("--min-confidence", type=probability, default=0.6, metavar="P",
                       help="below this probability a digit is shown as ? and flagged low_confidence "
                            "(default: %(default)s)")
    group.add_argument("--smooth", type=non_negative_int, default=None, metavar="K",
                       help="average each tracked digit over the last K frames; 0 = off "
                            "(default: 5 for cameras and synthetic://?hold=N, off for files)")
    group.add_argument("--max-digits", type=positive_int, default=32, metavar="N",
                       help="at most N digits per frame (default: %(default)s)")
    group.add_argument("--workers", type=non_negative_int, default=1, metavar="N",
                       help="digit-detection threads, overlapping inference (order kept); 0 = detect in the "
                            "inference thread: fewer FPS but lower latency on a busy CPU (default: %(default)s)")
    group.add_argument("--max-frames", type=positive_int, default=None, metavar="N",
                       help="stop after N frames (default: until the source ends or Ctrl-C)")
    return group


def detector_for(polarity):
    """The digit detector for ``--polarity``: None (the pipeline's own, judging each frame) for "auto"."""
    if polarity == "auto":
        return None
    import functools

    from .preprocess import digits_from_frame

    return functools.partial(digits_from_frame, polarity=polarity)


def add_output_args(parser):
    group = parser.add_argument_group("output")
    group.add_argument("--headless", action="store_true",
                       help="no window (automatic when there is no display)")
    group.add_argument("--jsonl", metavar="FILE", default=None,
                       help="one JSON line per frame (- for stdout)")
    group.add_argument("--save", metavar="OUT.mp4", default=None, help="write the annotated video")
    group.add_argument("--save-fps", type=non_negative_float, default=0.0, metavar="FPS",
                       help="frame rate of --save; 0 = the source's, else 30 (default: %(default)s)")
    group.add_argument("--serve", type=host_port, default=None, metavar="HOST:PORT",
                       help="serve the annotated MJPEG stream and live stats over HTTP, e.g. 127.0.0.1:8080 "
                            "(0.0.0.0 exposes it to the network)")
    group.add_argument("--status-every", type=non_negative_float, default=2.0, metavar="S",
                       help="headless: print a status line every S seconds; 0 = never (default: %(default)s)")
    return group


def add_arguments(parser):
    from .engine_cache import add_engine_args

    add_source_args(parser)
    add_model_args(parser)
    add_engine_args(parser)
    add_recognition_args(parser)
    add_output_args(parser)


# --------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------


def backend_options(args):
    """Options for the chosen backend; with `auto` both sets go along (each backend ignores the other's)."""
    from .engine_cache import engine_options

    options = {}
    if args.backend in ("onnxruntime", "auto"):
        options.update({"providers": args.ort_provider, "intra_op_threads": args.threads or None,
                        "precision": args.ort_precision})
    if args.backend in ("tensorrt", "auto"):
        options.update(engine_options(args))
    return options


def source_fps(source):
    for obj in (source, getattr(source, "camera", None)):
        fps = getattr(obj, "fps", 0) if obj is not None else 0
        if fps and fps > 0:
            return float(fps)
    return 30.0


def build_outputs(args, source, show_window, auto_serve):
    """The outputs asked for on the command line (not yet opened)."""
    from . import outputs as out

    items = []
    if show_window:
        items.append(out.WindowOutput())
    if args.save:
        items.append(out.VideoOutput(args.save, fps=args.save_fps or source_fps(source)))
    if args.serve or auto_serve:
        host, port = args.serve or out.parse_host_port(DEFAULT_SERVE)
        server = out.MjpegOutput(host, port)
        server.automatic = not args.serve  # not asked for: another free port is fine
        items.append(server)
    if not show_window and args.status_every > 0:
        items.append(out.ConsoleOutput(args.status_every))
    if args.jsonl:
        items.append(out.JsonlOutput(args.jsonl))
    return items


@contextlib.contextmanager
def stop_on_signals(stop):
    """SIGINT/SIGTERM set ``stop`` (a second Ctrl-C interrupts at once); handlers restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}

    def handler(signum, frame):
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt()
        LOG.info("signal %d: stopping", signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run(args):
    from . import manifest as mf
    from .outputs import cv2_has_gui, display_available
    from .pipeline import run_pipeline
    from .sources import open_source

    manifest = mf.load(args.model)
    show_window = not args.headless and display_available()
    if not args.headless and not show_window:
        LOG.info("no display (DISPLAY is not set): running headless")
    elif show_window and not cv2_has_gui():
        LOG.warning("this OpenCV has no GUI (pip's opencv-python-headless?): no window, running headless; "
                    "install opencv-python (or JetPack's python3-opencv) for a window")
        show_window = False
    auto_serve = (not show_window and not args.headless and not args.serve and not args.save
                  and not args.jsonl and args.max_frames is None)
    stop = threading.Event()
    source = open_source(args.source)
    summary = None
    try:
        outputs = build_outputs(args, source, show_window, auto_serve)
        with contextlib.ExitStack() as stack:
            for item in outputs:
                try:
                    stack.enter_context(item)
                except UserError:
                    if not getattr(item, "automatic", False):
                        raise
                    LOG.warning("port %d is in use; serving on a free port instead", item.port)
                    item.port = 0
                    stack.enter_context(item)
                if hasattr(item, "url"):
                    sys.stderr.write("edge_runtime: serving %s (Ctrl-C to stop)\n" % item.url)
                    sys.stderr.flush()
            with stop_on_signals(stop):
                summary = run_pipeline(
                    source, args.backend, manifest, outputs=outputs, max_frames=args.max_frames,
                    min_confidence=args.min_confidence, smooth_window=args.smooth, roi=args.roi,
                    max_digits=args.max_digits, backend_options=backend_options(args), stop_event=stop,
                    workers=args.workers, detector=detector_for(args.polarity))
    finally:
        source.close()
    report = sys.stderr if args.jsonl == "-" else sys.stdout  # keep `--jsonl -` pure JSON lines
    report.write(summary.format() + "\n")
    report.flush()
    if summary.error:
        raise UserError("%s; check the camera connection and run again (or use --source synthetic://)"
                        % summary.error, exit_code=1)
    return 0
