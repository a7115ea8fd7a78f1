"""`python3 -m edge_runtime score`: how well a bundle reads your own labelled photos.

Point it at a folder of images with a ``truth.json`` (the format of ``edge_runtime.scenes``:
boxes and digits, or just the digits as text in reading order) and it runs every image through
the same detection and backend as `run` on an image folder, then prints found / read-right
rates per effect, writes a JSON report and a montage of what went wrong. With ``--draft-truth``
it writes a first ``truth.draft.json`` from its own readings, for you to correct and rename.

Stdlib, numpy and cv2 only (runs on the Jetson, Python 3.6).
"""

import json
import logging
import os
import sys
import time

import numpy as np

from .cli_types import positive_int, probability
from .errors import UserError

LOG = logging.getLogger(__name__)

DRAFT_FILE = "truth.draft.json"
MONTAGE_TILES = 96  # at most this many tiles in --failures
TILE_W, TILE_H, TILE_IMAGE = 160, 128, 96

EPILOG = """truth.json (next to the images; every image it names is scored):
  {"images": {"page1.jpg": "2026 1125",                      digits as text, in reading order
              "page2.jpg": [{"bbox": [x, y, w, h], "digit": 7}]}}   or boxes (stricter)

examples:
  python3 -m edge_runtime score --scenes tests/data/scenes
  python3 -m edge_runtime score --scenes my_photos/ --failures fails.png --report score.json
  python3 -m edge_runtime score --scenes my_photos/ --draft-truth     # then check it, rename it truth.json
  python3 -m edge_runtime score --scenes my_photos/ --min-accuracy 0.98   # exit 1 below 98 %
"""


def iou_threshold(text):
    value = probability(text)
    if value <= 0:
        import argparse

        raise argparse.ArgumentTypeError("expected an IoU in (0, 1], got %s" % text)
    return value


def add_arguments(parser):
    from .app import add_model_args, roi_box
    from .engine_cache import add_engine_args
    from .scenes import DEFAULT_IOU

    group = parser.add_argument_group("scenes")
    group.add_argument("--scenes", required=True, metavar="FOLDER",
                       help="a folder of images with a truth.json, or a folder of such folders")
    group.add_argument("--iou", type=iou_threshold, default=DEFAULT_IOU, metavar="T",
                       help="box truth: a reading counts for a true digit when their boxes overlap by IoU >= T "
                            "(default: %(default)s)")
    group.add_argument("--min-accuracy", type=probability, default=None, metavar="P",
                       help="exit 1 when fewer than this share of the true digits are read right (e.g. 0.98)")
    add_model_args(parser)
    add_engine_args(parser)
    group = parser.add_argument_group("recognition (as in run)")
    group.add_argument("--roi", type=roi_box, default=None, metavar="X,Y,W,H",
                       help="only look for digits inside this rectangle (default: whole image)")
    group.add_argument("--polarity", default="auto", choices=("auto", "dark", "light"),
                       help="ink darker than the paper, lighter, or judged per image (default: %(default)s)")
    group.add_argument("--min-confidence", type=probability, default=0.6, metavar="P",
                       help="below this probability a reading is shown as ?; the strict column counts it as "
                            "wrong (default: %(default)s)")
    group.add_argument("--max-digits", type=positive_int, default=32, metavar="N",
                       help="at most N digits per image (default: %(default)s)")
    group = parser.add_argument_group("output")
    group.add_argument("--report", metavar="FILE.json", default=None,
                       help="write the counts, rates and every failing image's readings as JSON")
    group.add_argument("--failures", metavar="FILE.png", default=None,
                       help="write a montage of the misses, misreadings and false boxes (at most %d tiles)"
                            % MONTAGE_TILES)
    group.add_argument("--draft-truth", action="store_true",
                       help="no scoring: read every image of --scenes and write %s there (boxes and digits; "
                            "low-confidence ones marked \"check\"), to correct and rename truth.json" % DRAFT_FILE)


# --------------------------------------------------------------------------
# the recogniser: run's detection and backend, one image at a time
# --------------------------------------------------------------------------


def recogniser_for(net, manifest, roi=None, max_digits=32, polarity="auto"):
    """frame -> [{bbox, digit, confidence}], as `run` reads an image folder (no smoothing)."""
    from .pipeline import infer_in_batches
    from .scenes import recogniser_from_infer

    max_batch = int(getattr(net, "max_batch", 1 << 30))

    def infer(batch):
        return infer_in_batches(net, manifest, np.asarray(batch, np.float32), max_batch)

    options = {"roi": roi, "max_digits": max_digits}
    if polarity != "auto":
        options["polarity"] = polarity
    return recogniser_from_infer(infer, manifest["preprocess"], manifest["labels"], **options)


def _readable(scenes, unreadable):
    """The scenes whose image can be read (frames loaded here); the others are logged and listed."""
    from .scenes import load_frame

    for scene in scenes:
        try:
            frame = load_frame(scene)
        except ValueError as exc:
            LOG.warning("%s; skipped", exc)
            unreadable.append(scene.path)
            continue
        yield scene._replace(frame=frame)


def _progress(scenes, total, stream, every_s=2.0):
    """``scenes`` unchanged, with a progress line on ``stream`` every ``every_s`` seconds."""
    start = last = time.time()
    for done, scene in enumerate(scenes):
        now = time.time()
        if now - last >= every_s:
            stream.write("score: %d/%d images, %.1f s\n" % (done, total, now - start))
            stream.flush()
            last = now
        yield scene


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------


def _pct(value):
    return "%6.2f %%" % (100.0 * value)


def format_table(result, images):
    """The per-effect table and the overall row (``images``: effect -> images scored)."""
    rows = [("effect", "images", "digits", "found", "read right", "strict", "false boxes")]
    items = list(result["per_effect"].items())
    if len(items) != 1:
        items.append(("all", result))
    for effect, r in items:
        count = sum(images.values()) if effect == "all" else images.get(effect, 0)
        rows.append((effect, str(count), str(r["true_digits"]), _pct(r["recall"]), _pct(r["accuracy"]),
                     _pct(r["strict_accuracy"]), str(r["false_positives"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [row[i].rjust(widths[i]) for i in range(1, len(row))]
        lines.append("  " + "  ".join(cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------
# the failures montage
# --------------------------------------------------------------------------


def _fit(image, width, height):
    """``image`` (BGR) scaled to fit width x height, on white."""
    import cv2

    tile = np.full((height, width, 3), 255, np.uint8)
    if image.size == 0:
        return tile
    scale = min(width / float(image.shape[1]), height / float(image.shape[0]))
    size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST)
    tile[: size[1], : size[0]] = small
    return tile


def _around(frame, bbox, pad=1.0 / 3):
    x, y, w, h = bbox
    p = int(round(max(w, h) * pad))
    return frame[max(0, y - p): y + h + p, max(0, x - p): x + w + p]


def _tile(image, caption, name):
    """One montage tile: the image fitted above its caption (red) and the image file's name (grey)."""
    import cv2

    tile = np.full((TILE_H, TILE_W, 3), 255, np.uint8)
    tile[:TILE_IMAGE, :TILE_W] = _fit(image, TILE_W, TILE_IMAGE)
    cv2.putText(tile, caption[:24], (2, TILE_IMAGE + 13), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 0, 200), 1)
    cv2.putText(tile, name[-26:], (2, TILE_H - 5), cv2.FONT_HERSHEY_PLAIN, 0.8, (110, 110, 110), 1)
    return tile


def _reading(det):
    digit = "?" if det["digit"] is None else str(det["digit"])
    return "%s %.2f" % (digit, det["confidence"]) if "confidence" in det else digit


def failure_tiles(scene, frame, detections, iou):
    """Tiles (BGR [TILE_H, TILE_W]) of one image's mistakes: each true digit missed or misread and
    each false box (box truth), or the whole image with its readings (text truth)."""
    import cv2

    from .scenes import match_detections, read_text, text_digits

    if scene.text is not None:
        shown = frame.copy()
        for det in detections:
            x, y, w, h = det["bbox"]
            cv2.rectangle(shown, (x, y), (x + w, y + h), (0, 0, 220), max(1, frame.shape[1] // 320))
        return [_tile(shown, "%s: %s" % (text_digits(scene.text), read_text(detections)), scene.name)]
    tiles = []
    match = match_detections(detections, scene.truth, iou=iou)
    paired = {j: i for i, j, _ in match.pairs}
    for j, truth in enumerate(scene.truth):
        i = paired.get(j)
        if i is None:
            tiles.append(_tile(_around(frame, truth["bbox"]), "%s missed" % truth["digit"], scene.name))
        elif detections[i]["digit"] != truth["digit"]:
            tiles.append(_tile(_around(frame, truth["bbox"]), "%s read %s" % (truth["digit"], _reading(detections[i])),
                               scene.name))
    for i in match.unmatched_detections:
        tiles.append(_tile(_around(frame, detections[i]["bbox"]), "false %s" % _reading(detections[i]), scene.name))
    return tiles


def montage(tiles, columns=8):
    """The tiles in rows of ``columns`` on grey (BGR)."""
    rows = (len(tiles) + columns - 1) // columns
    sheet = np.full((max(1, rows) * TILE_H, columns * TILE_W, 3), 200, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        sheet[r * TILE_H:(r + 1) * TILE_H, c * TILE_W:(c + 1) * TILE_W] = tile
    return sheet


def write_png(path, image):
    import cv2

    from .manifest import atomic_write_bytes

    ok, data = cv2.imencode(".png", image)
    if not ok:
        raise UserError("%s: OpenCV could not encode the montage as PNG" % path, exit_code=1)
    atomic_write_bytes(path, data.tobytes())


# --------------------------------------------------------------------------
# draft truth
# --------------------------------------------------------------------------


def draft_truth(folder, recognise, min_confidence, stream):
    """Read every image of ``folder`` and write its readings as ``DRAFT_FILE`` there; returns the path."""
    import cv2

    from .manifest import atomic_write_json
    from .sources import IMAGE_EXTENSIONS, image_paths

    if not os.path.isdir(folder):
        raise UserError("--scenes %s: not a folder (expected a folder of images)" % folder)
    paths = image_paths(folder)  # (the images `run --source FOLDER` reads)
    if not paths:
        raise UserError("--scenes %s: no image (%s) in it" % (folder, " ".join(IMAGE_EXTENSIONS)))
    images, unsure, skipped = {}, 0, 0
    for path in paths:
        name = os.path.basename(path)
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            LOG.warning("%s: cannot be read as an image; skipped", path)
            skipped += 1
            continue
        digits = []
        for det in recognise(frame):
            entry = {"bbox": [int(v) for v in det["bbox"]], "digit": det["digit"],
                     "confidence": round(float(det["confidence"]), 4)}
            if det["confidence"] < min_confidence:
                entry["check"] = True
                unsure += 1
            digits.append(entry)
        images[name] = {"digits": digits}
    path = os.path.join(folder, DRAFT_FILE)
    atomic_write_json(path, {"format": "digit-scenes/1", "draft": True, "images": images})
    count = sum(len(entry["digits"]) for entry in images.values())
    stream.write("score: wrote %s: %d digits in %d images (%d below %.2f marked \"check\"%s)\n"
                 "  correct the digits, delete false boxes, add missed ones, then rename it truth.json\n"
                 % (path, count, len(images), unsure, min_confidence,
                    ", %d unreadable images skipped" % skipped if skipped else ""))
    return path


# --------------------------------------------------------------------------
# score
# --------------------------------------------------------------------------


def load_scenes_or_explain(path):
    from .scenes import TRUTH_FILE, load_scenes
    from .sources import image_paths

    if not os.path.exists(path):
        raise UserError("--scenes %s: no such folder" % path)
    try:
        return load_scenes(path)
    except ValueError as exc:
        hint = ""
        if os.path.isdir(path) and not os.path.isfile(os.path.join(path, TRUTH_FILE)) and image_paths(path):
            hint = ("; to make one, run with --draft-truth (it writes %s from the model's readings) or write "
                    '{"images": {"photo.jpg": "2026"}} with the digits of each image' % DRAFT_FILE)
        raise UserError("%s%s" % (exc, hint))


def score_scenes(recognise, scenes, iou, min_confidence, montage_path=None, stream=None):
    """(evaluate's result with "strict_accuracy", images per effect, unreadable paths, tiles written)."""
    from .scenes import evaluate

    stream = stream or sys.stderr
    unreadable, images, tiles = [], {}, []

    def counted(scenes_in):
        for scene in scenes_in:
            images[scene.effect] = images.get(scene.effect, 0) + 1
            yield scene

    result = evaluate(recognise, counted(_progress(_readable(scenes, unreadable), len(scenes), stream)), iou=iou,
                      keep_failures=len(scenes), strict_below=min_confidence)
    if montage_path:
        from .scenes import load_frame

        by_name = {scene.name: scene for scene in scenes}
        for failure in result["failures"]:
            if len(tiles) >= MONTAGE_TILES:
                break
            scene = by_name[failure["scene"]]
            tiles.extend(failure_tiles(scene, load_frame(scene), failure["detections"], iou))
        write_png(montage_path, montage(tiles[:MONTAGE_TILES]))
    return result, images, unreadable, min(len(tiles), MONTAGE_TILES)


def check_output(flag, path):
    """Stop before any work when ``path`` (an output file) cannot be written: it is a folder, or the
    nearest existing folder above it is a file or not writable."""
    if path is None:
        return
    if os.path.isdir(path):
        raise UserError("%s %s is a folder; give a file name, e.g. %s" % (flag, path, os.path.join(path, "score.out")))
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise UserError("%s %s: cannot write there (%s is %s); choose another path"
                        % (flag, path, folder, "not a folder" if not os.path.isdir(folder) else "not writable"))


def run(args):
    from . import manifest as mf
    from .app import backend_options
    from .backends import open_backend

    out = sys.stdout
    check_output("--report", args.report)
    check_output("--failures", args.failures)
    if args.draft_truth and os.path.isdir(args.scenes):
        check_output("--draft-truth", os.path.join(args.scenes, DRAFT_FILE))
    manifest = mf.load(args.model)
    scenes = None if args.draft_truth else load_scenes_or_explain(args.scenes)
    with open_backend(manifest, prefer=args.backend, **backend_options(args)) as net:
        recognise = recogniser_for(net, manifest, roi=args.roi, max_digits=args.max_digits, polarity=args.polarity)
        if args.draft_truth:
            draft_truth(args.scenes, recognise, args.min_confidence, out)
            return 0
        backend = net.name
        precision = net.describe().get("precision")
        start = time.time()
        result, images, unreadable, tiles = score_scenes(recognise, scenes, args.iou, args.min_confidence,
                                                         montage_path=args.failures)
        seconds = time.time() - start
    scored = sum(images.values())
    out.write("score: %d digits in %d images of %s, backend %s, IoU >= %s, strict: confidence >= %s (%.1f s)\n"
              % (result["true_digits"], scored, args.scenes, "%s (%s)" % (backend, precision) if precision else backend,
                 args.iou, args.min_confidence, seconds))
    out.write(format_table(result, images) + "\n")
    if unreadable:
        out.write("  %d unreadable images skipped (not scored): %s\n" % (len(unreadable), ", ".join(unreadable)))
    if args.failures:
        out.write("  %d images with a mistake; %d tiles in %s\n" % (len(result["failures"]), tiles, args.failures))
    if args.report:
        report = {
            "format": "digit-score/1", "scenes": args.scenes, "model": manifest.get("name"),
            "manifest": mf.manifest_path(args.model), "backend": backend, "model_precision": precision,
            "min_confidence": args.min_confidence, "images": scored, "images_per_effect": images,
            "unreadable": unreadable, "seconds": round(seconds, 3),
        }
        report.update(result)
        mf.atomic_write_text(args.report, json.dumps(report, indent=1, sort_keys=True) + "\n")
        out.write("  report: %s\n" % args.report)
    out.flush()
    if not scored:
        raise UserError("--scenes %s: none of its images could be read" % args.scenes, exit_code=1)
    if args.min_accuracy is not None and result["accuracy"] < args.min_accuracy:
        raise UserError("%.2f %% of the digits read right, below --min-accuracy %.2f %%"
                        % (100.0 * result["accuracy"], 100.0 * args.min_accuracy), exit_code=1)
    return 0
