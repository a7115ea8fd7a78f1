"""Recognition under conditions the synthetic camera does not make: printed digits (OpenCV's
Hershey fonts: another "handwriting") in fine and bold pens, digits drawn as pen strokes in
styles MNIST has few of, poor light, heavy JPEG, faded ink,
squared paper, glare, small digits (a page seen from afar) and a page lying on a desk.

    .venv/bin/python scripts/stress_detection.py --model artifacts/cnn
    .venv/bin/python scripts/stress_detection.py --model artifacts/cnn --frames 150 --seed 7

Every case renders ``--frames`` frames (640x480, or 1920x1440 up close) with known boxes and
digits and scores them with ``edge_runtime.scenes.evaluate`` (a detection counts when its box
matches a true digit with IoU >= 0.3; accuracy = right digits / true digits), through ONNX
Runtime. It prints one Markdown table row per case: frames, digits, accuracy, recall, precision,
false boxes. The
numbers of 2026-11-23 are in docs/benchmarks.md ("Stress tests beyond the generator").

Font cases draw 2-6 digits per frame, 20-60 px tall, stroke 2-5 px, in blue, red or black ink,
on plain paper, or on ruled paper with a margin line in dim, uneven light; the "big" ones 70-135 px
tall with a 1-3 px pen (a fine pen's digit is a faint hairline at the working size, beside bold
ones). The other cases
transform ``synthetic://`` frames (clean and with camera effects): darker with sensor noise
(light x0.35 or x0.2 with noise of sigma 3-4, and x0.2 / x0.1 with sigma 10 / 6: a webcam's gain
in a dark room, where the paper in a shadow or a corner is a few tens of gray levels), JPEG quality
20, the ink faded towards the paper, squared paper (light blue grid lines every
16 or 24 px: a notebook's 5 mm squares seen from further or closer), a 9 px sideways motion blur,
a glare spot (a lamp's reflection on glossy paper, washing paper and ink towards white),
or the page turned by 10 or 20 degrees either way (shrunk to 3/4 to stay in the frame; the
model learned digits turned by up to 10 degrees). "Digits written on the lines of a ruled notebook"
fills 2-4 rows on a page ruled every 34-52 px with digits 60-90 % of the spacing tall, each on its
ruling, rows often on neighbouring lines (a digit's top nearly touching the foot of the one above).
"Digits written in pen" draws digits as pen strokes, not MNIST's: 22 styles (``PEN_STYLES``), among
them some MNIST's writers seldom used (a 1 with a flag and a base, a crossed 7, an open 4 or one whose
bar stops short of its stem, a 5 whose bar is written apart, a flat-topped 3, a looped 2), each
writer's slant (up to 18 degrees), width and wobble at random, 24-110 px tall in a pen 1.2-13 % of
the height wide (a ballpoint on a big digit to a marker on a small one); the "upright" case keeps
the slant within 4 degrees, 30-130 px, where a 1 is a straight thin line.
"Digits circled or boxed in pen" draws an ellipse or a rectangle around each of 2-4 ``synthetic://``
digits, in the digit's own ink (an enclosure may touch its digit or cross a neighbour's).
"The page lying on a desk" shrinks a ``synthetic://`` page to 70-85 %, turns it by up to 6 degrees
and lays it on a dark desk, a grey table or a wood grain, all of its edges in view.
"A page seen from afar" renders ``synthetic://`` frames at 3x the size with 6-12 digits and shrinks them to 640x480:
digits 11-43 px tall (detection looks for 2.5 % of the frame and more: 12 px). "A 1920x1440
camera up close" renders ``synthetic://`` frames at 3x the size with digits 3x as tall (120-360 px,
strokes up to about 50 px wide), its rulings, blur and noise at their pixel sizes. "One digit held
up to the camera" is a ``synthetic://`` frame of one digit 160-384 px tall, a third of the frame's
height and more, in the camera's pens (a marker's strokes are 40-80 px wide there). "The recorded
scenes through a 1280x960 / 1920x1440 camera" are ``tests/data/scenes`` (clean and camera, notebook
pages photographed at an angle, a red margin line slanted with the page) enlarged 2x / 3x (cubic) and
saved as JPEG 90: what a camera of that resolution sees, where rulings the 640x480 frame hides are
ink. "Through a 1280x960 camera (rendered at that size)" renders ``synthetic://`` camera frames at
1280x960 with everything twice as big but the rulings, blur and sensor noise, which keep their pixel
sizes, then dims them: a bigger sensor's frame in poor light. Blank pages (camera
effects: shadows, rulings, coloured paper, no digits) count the boxes found where there is
nothing to find.
"""

import argparse
import functools
import os
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from edge_runtime import manifest as mf  # noqa: E402
from edge_runtime import scenes  # noqa: E402
from edge_runtime.backends import open_backend  # noqa: E402
from edge_runtime.backends.base import BackendError  # noqa: E402
from edge_runtime.pipeline import batch_for_manifest  # noqa: E402
from edge_runtime.synthetic import _ink_bbox  # noqa: E402

FONTS = {
    "simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "duplex": cv2.FONT_HERSHEY_DUPLEX,
    "complex": cv2.FONT_HERSHEY_COMPLEX,  # (the "script simplex" font's digits are simplex's own)
    "script complex": cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
    "plain (small)": cv2.FONT_HERSHEY_PLAIN,
}
PENS = ((40, 30, 30), (120, 40, 20), (30, 30, 140))  # BGR: black, blue, red ink
PAPER = 235
GRID = (215, 190, 160)  # BGR: the light blue of squared paper's lines
SIZE = (640, 480)
HELD_UP_PX = (160, 384)  # "one digit held up to the camera": its height, 1/3 to 4/5 of the frame's
DESKS = ("dark", "grey", "wood-grain")  # what the page lies on in "the page lying on a desk"


def _apart(a, b, gap=15):
    return (a[0] > b[0] + b[2] + gap or b[0] > a[0] + a[2] + gap
            or a[1] > b[1] + b[3] + gap or b[1] > a[1] + a[3] + gap)


def font_scene(rng, font, ruled_dim=False, big=False):
    """(BGR frame, truth) with 2-6 digits of one Hershey font; truth boxes are the drawn ink's.

    ``big``: 70-135 px tall digits written with a fine (1 px), medium or bold (3 px) pen, so a
    fine-pen digit is a faint hairline at the working size beside bold ones."""
    w, h = SIZE
    ink = np.zeros((h, w), np.float32)
    truth = []
    wanted = int(rng.integers(2, 7))
    for _ in range(200):
        if len(truth) == wanted:
            break
        digit = int(rng.integers(0, 10))
        if big:
            scale, thickness = float(rng.uniform(3.5, 6.0)), int(rng.integers(1, 4))
        else:
            scale, thickness = float(rng.uniform(1.6, 3.2)), int(rng.integers(2, 6))
        (tw, th), base = cv2.getTextSize(str(digit), font, scale, thickness)
        x, y = int(rng.integers(20, w - tw - 20)), int(rng.integers(th + 20, h - 20 - base))
        drawn = np.zeros((h, w), np.uint8)
        cv2.putText(drawn, str(digit), (x, y), font, scale, 255, thickness, cv2.LINE_AA)
        ys, xs = np.nonzero(drawn > 64)
        box = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        if all(_apart(box, t["bbox"]) for t in truth):
            ink = np.maximum(ink, drawn / np.float32(255.0))
            truth.append({"bbox": box, "digit": digit})
    frame = np.full((h, w, 3), PAPER, np.float32)
    if ruled_dim:
        for y in range(40, h, 32):
            cv2.line(frame, (0, y), (w, y), (200, 170, 150), 1)
        cv2.line(frame, (70, 0), (70, h), (150, 150, 220), 1)
    pen = np.array(PENS[int(rng.integers(0, len(PENS)))], np.float32)
    frame = frame * (1 - ink[..., None]) + pen * ink[..., None]
    if ruled_dim:
        across = np.linspace(0.35, 0.9, w, dtype=np.float32)[None, :]  # dim on the left, brighter on the right
        down = np.linspace(0.8, 1.0, h, dtype=np.float32)[:, None]
        frame *= (across * down)[..., None]
    frame = cv2.GaussianBlur(np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8), (3, 3), 0.8)
    return jpeg(frame, 80), truth


def jpeg(frame, quality):
    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def dimmed(frame, rng, factor, noise):
    """Less light (x factor) with sensor noise of sigma ``noise`` grey levels."""
    out = frame.astype(np.float32) * np.float32(factor) + rng.normal(0, noise, frame.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def faded(frame, factor, paper_px=61):
    """Ink faded towards the paper: its darkness (paper minus pixel) times ``factor``. The paper is
    the frame closed with a ``paper_px`` square, wider than the boldest strokes (a narrower one leaves
    the cores of bold strokes unfaded: solid dark patches in faded digits)."""
    kernel = np.ones((paper_px, paper_px), np.uint8)
    paper = cv2.morphologyEx(frame, cv2.MORPH_CLOSE, kernel).astype(np.float32)
    return np.clip(paper - (paper - frame.astype(np.float32)) * np.float32(factor), 0, 255).astype(np.uint8)


def squared(frame, step, offset=0):
    """Squared paper: 1 px light blue grid lines every ``step`` px (from ``offset``) under the ink."""
    h, w = frame.shape[:2]
    grid = np.full(frame.shape, 255, np.uint8)
    for y in range(offset, h, step):
        cv2.line(grid, (0, y), (w, y), GRID, 1)
    for x in range(offset, w, step):
        cv2.line(grid, (x, 0), (x, h), GRID, 1)
    return (frame.astype(np.float32) * grid / np.float32(255.0)).astype(np.uint8)


def _scenes(frames, seed, change, **camera):
    """``frames`` synthetic:// scenes (SyntheticCamera options ``camera``), each (frame, truth) passed
    through ``change(frame, truth, rng)``, which returns the new pair (one rng, seeded, for all)."""
    from edge_runtime.synthetic import SyntheticCamera

    source, rng = SyntheticCamera(seed=seed, **camera), np.random.default_rng(seed)
    return [change(frame, truth, rng) for frame, truth in (source.render(i) for i in range(frames))]


def _synthetic(frames, seed, transform, **camera):
    """``frames`` synthetic:// scenes (SyntheticCamera options ``camera``), each frame transformed."""
    return _scenes(frames, seed, lambda frame, truth, rng: (transform(frame, rng), truth), **camera)


def _high_resolution(frames, seed, transform, factor=2, **camera):
    """``frames`` ``synthetic://`` camera scenes rendered at ``factor`` x 640x480 (digits, margins and
    pens ``factor`` x as big, the rulings, blur and sensor noise at their pixel sizes), each transformed."""
    from edge_runtime.synthetic import MAX_DIGIT_PX, MIN_DIGIT_PX

    return _synthetic(frames, seed, transform, width=SIZE[0] * factor, height=SIZE[1] * factor,
                      margin=8 * factor, digit_px=(MIN_DIGIT_PX * factor, MAX_DIGIT_PX * factor), **camera)


def motion_blurred(frame, length):
    """A camera moving sideways during the exposure: a horizontal box blur ``length`` px long."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    return cv2.filter2D(frame, -1, kernel)


def tilted(frame, truth, degrees, images=None):
    """The page turned by ``degrees`` about the frame's centre and shrunk to 3/4 (so it stays in the
    frame); each true box becomes the bounding box of its turned ink (``moved_truth``)."""
    h, w = frame.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 0.75)
    out = cv2.warpAffine(frame, turn, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out, moved_truth(truth, turn, images)


# A pen stroke's ink box is where its coverage passes 0.25 (synthetic._ink_bbox) after the pen's
# ramp (coverage - 0.3) / 0.35 (synthetic._stroke_alpha): an MNIST pixel of 0.3875 x 255 or more.
INK_LEVEL = int(np.ceil(255 * (0.3 + 0.25 * 0.35)))  # (99)


def _ink_corners(digit, box):
    """The corners of the inked pixels of the 28x28 ``digit``, mapped onto ``box`` (x, y, w, h): the
    digit's own ink box lands on ``box``, as SyntheticCamera draws it. None if it has no ink."""
    rows, cols = np.nonzero(digit >= INK_LEVEL)
    if rows.size == 0:
        return None
    x, y, bw, bh = box
    c0, r0 = cols.min(), rows.min()
    sx = bw / float(cols.max() + 1 - c0)
    sy = bh / float(rows.max() + 1 - r0)
    corners = [(cols + dx - c0, rows + dy - r0) for dx in (0, 1) for dy in (0, 1)]
    px = np.concatenate([c for c, _ in corners]) * sx + x
    py = np.concatenate([r for _, r in corners]) * sy + y
    return np.stack([px, py, np.ones_like(px)], axis=1).astype(np.float32)


def moved_truth(truth, move, images=None):
    """``truth`` with each box moved by the 2x3 affine ``move``: the bounding box of its moved ink
    where ``images`` (the camera's digit pool) has the item's "source" digit, else of its moved
    corners. The corners overstate a turned digit's box, most of all a slanted one's (a 1 leaning
    20 degrees, stood upright by the turn, fills a fraction of it, IoU under 0.3: counted as missed).
    On 40 single-digit frames turned by 20 degrees the corners' box edges were 2-20 px (median 11)
    off the ink's, these 1-4 px."""
    boxes = []
    for t in truth:
        x, y, bw, bh = t["bbox"]
        points = None
        if images is not None and "source" in t:
            points = _ink_corners(images[t["source"]], t["bbox"])
        if points is None:
            points = np.array([[x, y, 1], [x + bw, y, 1], [x, y + bh, 1], [x + bw, y + bh, 1]], np.float32)
        moved = points @ move.T
        (x0, y0), (x1, y1) = moved.min(axis=0), moved.max(axis=0)
        boxes.append(dict(t, bbox=[int(round(x0)), int(round(y0)), int(round(x1 - x0)), int(round(y1 - y0))]))
    return boxes


def _tilted(frames, seed, effects, degrees):
    """``frames`` synthetic:// scenes, the page turned by +``degrees`` and -``degrees`` in turn."""
    from edge_runtime.synthetic import SyntheticCamera

    source = SyntheticCamera(seed=seed, effects=effects)
    return [tilted(frame, truth, degrees if i % 2 else -degrees, source.images)
            for i, (frame, truth) in enumerate(source.render(i) for i in range(frames))]


def _write_digits(frame, source, rng, pen, x, foot, count, size, jitter, step, margin):
    """Write ``count`` digits of ``source``'s pool in ``pen`` on ``frame`` from ``x`` rightwards, each
    one's ink ending at row ``foot`` + ``rng.randint(*jitter)``, ``size[0]`` x uniform(``size[1:]``)
    tall as ``_stroke_alpha`` draws it, the next starting ``step(its ink height)`` after its ink;
    stops ``margin`` px before the right edge or where a digit would leave the frame. Returns the
    truth items (each naming its "source", the digit's index in the pool)."""
    camera = source.effects == "camera"
    truth = []
    for _ in range(count):
        index = rng.randint(len(source.images))
        alpha = source._stroke_alpha(rng, source.images[index], int(round(size[0] * rng.uniform(*size[1:]))), camera)
        box = _ink_bbox(alpha)
        if box is None:
            continue
        bx, by, bw, bh = box
        x0, y0 = x - bx, foot + int(rng.randint(*jitter)) - (by + bh)
        region = frame[max(0, y0) : y0 + alpha.shape[0], max(0, x0) : x0 + alpha.shape[1]]
        if x + bw > frame.shape[1] - margin or region.shape[:2] != alpha.shape:
            break
        region[:] = region * (1 - alpha[..., None]) + pen * alpha[..., None]
        truth.append({"bbox": [x, y0 + by, bw, bh], "digit": int(source.labels[index]), "source": int(index)})
        x += bw + step(bh)
    return truth


def _blank_page(source, rng):
    """A page of ``source``'s size (float32 BGR): paper at 245, or (camera effects) tinted 205-255."""
    frame = np.empty((source.height, source.width, 3), np.float32)
    camera = source.effects == "camera"
    frame[:] = [rng.uniform(205, 250), rng.uniform(215, 252), rng.uniform(220, 255)] if camera else 245.0
    return frame


def notebook_scene(source, rng, spacing=(34, 52)):
    """(BGR frame, truth): digits written on the lines of a ruled notebook page, as people write them.

    Rulings every 34-52 px; 2-4 rows of 2-5 digits, each row on a ruling, often on neighbouring
    ones, so a digit's top nearly touches the foot of the one above it. Digits are 60-90 % of the
    spacing tall and sit on their line (crossing it by up to 2 px). ``source``: a SyntheticCamera,
    which lends its MNIST test digits, pens and (effects="camera") camera effects; ``rng``: a
    numpy RandomState. Each truth item names its "source" (the digit's index in the camera's pool),
    as ``SyntheticCamera.render``'s do."""
    camera = source.effects == "camera"
    w, h = source.width, source.height
    s = int(rng.randint(spacing[0], spacing[1] + 1))
    frame = _blank_page(source, rng)
    lines = list(range(int(rng.randint(s // 2, s + 1)), h, s))
    colour, thickness = [220, 190, 160] if rng.rand() < 0.7 else [170, 170, 170], int(rng.randint(1, 3))
    for y in lines:
        cv2.line(frame, (0, y), (w - 1, y), colour, thickness)
    pen = np.array(source._ink_colour(rng, camera), np.float32)
    rows = [y for y in lines if y - s > 4 and y < h - 6]
    rng.shuffle(rows)
    truth = []
    for y in sorted(rows[: int(rng.randint(2, 5))]):
        truth += _write_digits(frame, source, rng, pen, int(rng.randint(8, 60)), y, int(rng.randint(2, 6)),
                               (s, 0.6, 0.9), (-1, 3), lambda bh: int(rng.uniform(0.25, 0.7) * bh), 8)
    return _photographed(source, rng, frame), truth


def _photographed(source, rng, frame):
    """A drawn page (float32 BGR) as uint8: as it is, or (``source.effects`` "camera") under uneven
    light, through the camera's blur and noise (``source``'s) and JPEG 45-90."""
    if source.effects != "camera":
        return np.clip(frame, 0, 255).astype(np.uint8)
    h, w = frame.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = rng.uniform(-0.35, 0.35, size=2)
    light = (1.0 + gx * (xs / w - 0.5) + gy * (ys / h - 0.5)) * rng.uniform(0.75, 1.05)
    frame = np.clip(source._camera_effects(rng, frame * light[..., None]), 0, 255).astype(np.uint8)
    return jpeg(frame, int(rng.randint(45, 90)))


def enclosed(frame, truth, rng):
    """Each digit circled or boxed in its own pen, as people mark answers: an ellipse 1.35x its box
    plus 3-8 px, or a rectangle 12-30 % of its size away from it, 1-3 px wide, either at random."""
    out = frame.copy()
    for t in truth:
        x, y, w, h = t["bbox"]
        pen = tuple(int(v) for v in frame[y : y + h, x : x + w].reshape(-1, 3).min(axis=0))  # its ink's colour
        thickness = int(rng.integers(1, 4))
        if rng.random() < 0.5:
            axes = tuple(int(round(0.675 * side + rng.integers(3, 9))) for side in (w, h))
            cv2.ellipse(out, (x + w // 2, y + h // 2), axes, 0, 0, 360, pen, thickness, cv2.LINE_AA)
        else:
            margin = int(round(rng.uniform(0.12, 0.3) * max(w, h))) + 2
            cv2.rectangle(out, (x - margin, y - margin), (x + w + margin, y + h + margin), pen, thickness)
    return out


def _enclosed(frames, seed, effects):
    """``frames`` synthetic:// scenes (at most 4 digits), every digit circled or boxed (``enclosed``)."""
    return _scenes(frames, seed, lambda frame, truth, rng: (enclosed(frame, truth, rng), truth), effects=effects,
                   digits=4)


def desk_surface(rng, height, width, desk):
    """A desk under the page (float32 BGR): a dark one (20-70), a grey table (90-150), both with sensor
    noise, or a wood grain (brown, wavy stripes +-18 levels every 20-60 px, and noise)."""
    if desk == "wood-grain":
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        waves = ys + rng.uniform(-0.3, 0.3) * xs + 3.0 * np.sin(xs / rng.uniform(40, 90))
        grain = 18.0 * np.sin(waves / rng.uniform(3, 9)) + rng.normal(0, 6, (height, width))
        base = np.array([rng.uniform(40, 90), rng.uniform(70, 120), rng.uniform(110, 160)], np.float32)
        return base + grain[..., None]
    level = rng.uniform(20, 70) if desk == "dark" else rng.uniform(90, 150)
    return np.full((height, width, 3), level, np.float32) + rng.normal(0, 3, (height, width, 3))


def on_desk(frame, truth, rng, desk):
    """The page lying on a desk, all of it in view: shrunk to 70-85 %, turned by up to 6 degrees and
    moved by up to 40 px; each true box becomes the bounding box of its moved corners."""
    h, w = frame.shape[:2]
    move = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), rng.uniform(-6, 6), rng.uniform(0.7, 0.85))
    move[:, 2] += (rng.uniform(-40, 40), rng.uniform(-30, 30))
    page = cv2.warpAffine(frame, move, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
    cover = cv2.warpAffine(np.ones((h, w), np.float32), move, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    out = np.clip(page * cover + desk_surface(rng, h, w, desk) * (1.0 - cover), 0, 255).astype(np.uint8)
    return out, moved_truth(truth, move)


def _on_desk(frames, seed, effects, desk):
    """``frames`` synthetic:// scenes, each page lying on the ``desk`` (``on_desk``)."""
    return _scenes(frames, seed, functools.partial(on_desk, desk=desk), effects=effects)


def glare(frame, rng):
    """A lamp's reflection on glossy paper: an ellipse (40-140 x 30-100 px half-axes, in the middle 60 %
    of the frame) washing paper and ink towards white by 50-90 %, its edge sharp or soft (0-30 px)."""
    h, w = frame.shape[:2]
    spot = np.zeros((h, w), np.float32)
    centre = (int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.2, 0.8) * h))
    axes = (int(rng.uniform(40, 140)), int(rng.uniform(30, 100)))
    cv2.ellipse(spot, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    soft = int(rng.integers(0, 16)) * 2 + 1
    if soft > 1:
        spot = cv2.GaussianBlur(spot, (soft, soft), 0)
    washed = rng.uniform(0.5, 0.9) * spot[..., None]
    out = frame.astype(np.float32)
    return np.clip(out + (255.0 - out) * washed, 0, 255).astype(np.uint8)


def _pages(scene, frames, seed, effects):
    """``frames`` pages of ``scene(source, rng)`` (``notebook_scene``, ``number_scene``), page i drawn
    with RandomState(seed x 1000 + i) from a SyntheticCamera's digits and pens."""
    from edge_runtime.synthetic import SyntheticCamera

    source = SyntheticCamera(seed=seed, effects=effects)
    return [scene(source, np.random.RandomState(seed * 1000 + i)) for i in range(frames)]


def _notebook(frames, seed, effects):
    """``frames`` ``notebook_scene`` pages."""
    return _pages(notebook_scene, frames, seed, effects)


def number_scene(source, rng, gap=(-0.1, 0.15)):
    """(BGR frame, truth): numbers of 2-5 digits written close together, as people write them.

    1-3 rows, each one number: digits 28-80 px tall (one size a number, each digit 90-110 % of
    it), the next digit's ink starting ``gap`` x the height after the last one's (negative: their
    boxes overlap, so strokes may touch), bottoms level within a few pixels. Plain paper; the
    camera's effects when ``source.effects`` is "camera". Truth as ``notebook_scene``'s."""
    camera = source.effects == "camera"
    h = source.height
    frame = _blank_page(source, rng)
    pen = np.array(source._ink_colour(rng, camera), np.float32)
    truth, top = [], int(rng.randint(20, 60))
    for _ in range(int(rng.randint(1, 4))):
        size = int(rng.randint(28, 81))
        base = top + int(1.2 * size)  # the row's foot
        if base > h - 20:
            break
        truth += _write_digits(frame, source, rng, pen, int(rng.randint(20, 200)) + size // 2, base,
                               int(rng.randint(2, 6)), (size, 0.9, 1.1), (-3, 4),
                               lambda bh: int(round(rng.uniform(*gap) * bh)), 10)
        top = base + int(rng.randint(15, 80))
    if camera:
        frame = source._camera_effects(rng, frame)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    return (jpeg(frame, int(rng.randint(45, 90))) if camera else frame), truth


def _numbers(frames, seed, effects):
    """``frames`` ``number_scene`` pages."""
    return _pages(number_scene, frames, seed, effects)


def _arc(cx, cy, rx, ry, start, end, points=20):
    """Points of an ellipse's arc from ``start`` to ``end`` degrees (y down: 90 is its bottom)."""
    angles = np.radians(np.linspace(start, end, points))
    return [(cx + rx * np.cos(a), cy + ry * np.sin(a)) for a in angles]


# Digits as pen strokes, in styles that MNIST's writers (US Census staff and students) seldom used
# beside the common ones: a 1 with a flag and a base, a crossed 7, an open 4, a 4 whose bar stops short
# of its stem, a 5 whose bar is written apart, a flat-topped 3, a looped 2. Each style is a list of
# strokes, each a list of (x, y) points in a 100 x 140 box (y down).
PEN_STYLES = {
    0: {"oval": [_arc(50, 70, 40, 62, -95, 275, 36)],
        "narrow, overlapping": [_arc(50, 70, 28, 64, -80, 300, 36)]},
    1: {"stroke": [[(52, 4), (48, 136)]],
        "flag": [[(28, 36), (58, 4), (56, 136)]],
        "flag and base": [[(28, 36), (58, 4), (56, 132)], [(26, 134), (86, 134)]]},
    2: {"plain": [_arc(50, 40, 38, 34, 195, 360) + [(84, 52), (12, 134), (92, 132)]],
        "looped": [_arc(50, 40, 38, 34, 195, 360) + [(84, 52), (22, 122)] + _arc(28, 124, 10, 9, 250, -60, 10)
                   + [(92, 132)]]},
    3: {"round": [_arc(48, 36, 36, 30, 200, 450) + _arc(50, 100, 42, 34, -90, 160)],
        "flat top": [[(14, 8), (86, 8), (44, 62)] + _arc(50, 98, 40, 36, -95, 155)]},
    4: {"open": [[(48, 4), (12, 92), (94, 92)], [(74, 36), (74, 136)]],
        "closed": [[(72, 136), (72, 4), (8, 96), (96, 96)]],
        "bar short of the stem": [[(42, 6), (14, 88), (62, 88)], [(76, 22), (76, 136)]]},
    5: {"one stroke": [[(86, 8), (26, 8), (20, 64)] + _arc(48, 96, 40, 38, -140, 150)],
        "bar apart": [[(26, 8), (20, 64)] + _arc(48, 96, 40, 38, -140, 150), [(44, 2), (92, 0)]]},
    6: {"round": [[(78, 6)] + _arc(92, 100, 78, 96, 232, 180, 8)[1:] + _arc(50, 104, 36, 32, 180, 530, 30)]},
    7: {"plain": [[(8, 8), (92, 8), (38, 136)]],
        "crossed": [[(8, 8), (92, 8), (38, 136)], [(36, 70), (86, 70)]],
        "serif": [[(8, 30), (10, 8), (92, 8), (40, 136)]]},
    8: {"one stroke": [_arc(50, 36, 32, 30, 60, -250, 24) + _arc(50, 102, 40, 34, -70, 250, 30)],
        "two loops": [_arc(50, 36, 30, 30, 0, 360, 26), _arc(50, 100, 40, 36, -90, 270, 30)]},
    9: {"straight stem": [_arc(48, 40, 36, 34, 10, 375, 30) + [(84, 136)]],
        "curved stem": [_arc(48, 40, 36, 34, 10, 375, 30) + [(82, 100), (60, 134), (30, 128)]]},
}


def _wobble(rng, points, scale):
    """``points`` smooth random (x, y) offsets of about ``scale``: a hand's wobble along a stroke."""
    knots = rng.normal(0, scale, (4, 2))
    along = np.linspace(0, 3, points)
    return np.stack([np.interp(along, np.arange(4), knots[:, k]) for k in range(2)], 1)


def pen_digit(rng, digit, height, pen, style=None, slant=18.0):
    """(float32 ink coverage [h, w] in [0, 1], style name): ``digit`` in one of its ``PEN_STYLES``
    (``style``, or one at random), its strokes ``pen`` px wide and about ``height`` px tall, slanted
    by up to ``slant`` degrees either way, 0.6-1.05x as wide as the style and wobbling by about 3 %
    (drawn at 4x with anti-aliased lines and shrunk, so any pen width is drawn as it is)."""
    styles = PEN_STYLES[digit]
    name = style or sorted(styles)[rng.randint(len(styles))]
    shear = np.tan(np.radians(rng.uniform(-slant, slant)))
    wide = rng.uniform(0.6, 1.05) * (0.45 if (digit, name) == (1, "stroke") else 1.0)
    scale = height / 140.0
    strokes = []
    for stroke in styles[name]:
        points = np.array(stroke, np.float64)
        points += _wobble(rng, len(points), 3.0)
        x = 50 + (points[:, 0] - 50) * wide + (70 - points[:, 1]) * shear
        strokes.append(np.stack([x, points[:, 1]], 1) * scale)
    every = np.concatenate(strokes)
    corner = every.min(axis=0) - (pen + 4)
    width, tall = np.ceil(every.max(axis=0) - corner + pen + 4).astype(int)
    up = 4
    canvas = np.zeros((tall * up, width * up), np.uint8)
    for stroke in strokes:  # (shift=4: 1/16 px)
        cv2.polylines(canvas, [np.round((stroke - corner) * up * 16).astype(np.int32)], False, 255,
                      max(1, int(round(pen * up))), cv2.LINE_AA, shift=4)
    return cv2.resize(canvas, (width, tall), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0, name


def pen_scene(source, rng, heights=(24, 110), slant=18.0):
    """(BGR frame, truth): 2-6 digits written in pen (``pen_digit``), ``heights`` px tall, the pen 1.2-13 %
    of the height wide (at least 1.2 px: a ballpoint on a big digit to a marker on a small one), in
    ``source``'s pens; plain paper, or (``source.effects`` "camera") tinted paper, uneven light, rulings
    on half the pages, the camera's blur and noise and JPEG. Each truth item names its "style"."""
    camera = source.effects == "camera"
    w, h = source.width, source.height
    frame = _blank_page(source, rng)
    if camera and rng.rand() < 0.5:
        spacing = int(rng.randint(30, 50))
        for y in range(int(rng.randint(10, spacing)), h, spacing):
            cv2.line(frame, (0, y), (w - 1, y), [220, 190, 160], 1)
    pen = np.array(source._ink_colour(rng, camera), np.float32)
    truth, wanted = [], int(rng.randint(2, 7))
    for _ in range(200):
        if len(truth) == wanted:
            break
        digit, height = int(rng.randint(10)), int(rng.randint(heights[0], heights[1] + 1))
        alpha, style = pen_digit(rng, digit, height, max(1.2, height * rng.uniform(0.012, 0.13)), slant=slant)
        ah, aw = alpha.shape
        if aw + 20 > w or ah + 20 > h:
            continue
        x, y = int(rng.randint(10, w - aw - 10)), int(rng.randint(10, h - ah - 10))
        bx, by, bw, bh = _ink_bbox(alpha)
        box = [x + bx, y + by, bw, bh]
        if all(_apart(box, t["bbox"]) for t in truth):
            alpha = alpha[..., None] * (rng.uniform(0.8, 1.0) if camera else 1.0)
            region = frame[y : y + ah, x : x + aw]
            region[:] = region * (1 - alpha) + pen * alpha
            truth.append({"bbox": box, "digit": digit, "style": style})
    return _photographed(source, rng, frame), truth


def _pen_written(frames, seed, effects, **style):
    """``frames`` ``pen_scene`` pages (its options ``style``)."""
    return _pages(functools.partial(pen_scene, **style), frames, seed, effects)


def afar_camera(seed, effects, factor=3):
    """A synthetic camera ``factor`` x as big as 640x480, with 6-12 digits and margins to scale."""
    from edge_runtime.synthetic import SyntheticCamera

    width, height = SIZE
    return SyntheticCamera(width=width * factor, height=height * factor, digits=12, effects=effects, seed=seed,
                           margin=8 * factor)


def shrunk(frame, truth, factor=3):
    """A frame ``factor`` x as big as 640x480 and its truth, shrunk to 640x480 with INTER_AREA."""
    small = cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA)
    return small, [dict(t, bbox=[int(round(v / float(factor))) for v in t["bbox"]]) for t in truth]


def up_close_camera(seed, effects, factor=3):
    """A synthetic camera ``factor`` x as big as 640x480 whose digits are ``factor`` x as tall (a
    high-resolution camera close to the page); its rulings, blur and noise keep their pixel sizes."""
    from edge_runtime.synthetic import MAX_DIGIT_PX, MIN_DIGIT_PX, SyntheticCamera

    width, height = SIZE
    return SyntheticCamera(width=width * factor, height=height * factor, effects=effects, seed=seed,
                           margin=8 * factor, digit_px=(MIN_DIGIT_PX * factor, MAX_DIGIT_PX * factor))


def _up_close(frames, seed, effects, factor=3):
    """``frames`` scenes of ``up_close_camera``, at their full size."""
    source = up_close_camera(seed, effects, factor)
    return [source.render(i) for i in range(frames)]


def _from_afar(frames, seed, effects, factor=3):
    """``frames`` scenes of ``afar_camera``, ``shrunk``: a page with small digits (11-43 px at 3x)."""
    source = afar_camera(seed, effects, factor)
    return [shrunk(frame, truth, factor) for frame, truth in (source.render(i) for i in range(frames))]


def _held_up(frames, seed, effects):
    """``frames`` ``synthetic://`` scenes of one digit 160-384 px tall (a third of the 640x480 frame's
    height and more), often in a marker: a digit held up to the camera."""
    from edge_runtime.synthetic import SyntheticCamera

    source = SyntheticCamera(digits=1, effects=effects, seed=seed, digit_px=HELD_UP_PX)
    return [source.render(i) for i in range(frames)]


def _recorded_enlarged(frames, factor):
    """The first ``frames`` recorded scenes (``tests/data/scenes``, camera then clean) enlarged
    ``factor`` x (cubic), through JPEG 90, their true boxes scaled alike."""
    found = scenes.load_scenes(os.path.join(ROOT, "tests", "data", "scenes"))[:frames]
    out = []
    for scene in found:
        big = cv2.resize(scenes.load_frame(scene), None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        big = cv2.imdecode(cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 90])[1], cv2.IMREAD_COLOR)
        out.append((big, [dict(t, bbox=[int(round(v * factor)) for v in t["bbox"]]) for t in scene.truth]))
    return out


def cases(frames, seed):
    """[(name, [(frame, truth)])] for every stress case (frames rendered lazily per case)."""
    out = []
    for name, font in FONTS.items():
        for ruled in (False, True):
            rng = np.random.default_rng(seed)
            label = "font %s, %s" % (name, "ruled paper, dim uneven light" if ruled else "plain paper")
            out.append((label, lambda rng=rng, font=font, ruled=ruled: [
                font_scene(rng, font, ruled) for _ in range(frames)]))
    for ruled in (False, True):
        rng = np.random.default_rng(seed)
        paper = "ruled paper, dim uneven light" if ruled else "plain paper"
        label = "font simplex, big, fine to bold pen, %s" % paper
        out.append((label, lambda rng=rng, ruled=ruled: [
            font_scene(rng, FONTS["simplex"], ruled, big=True) for _ in range(frames)]))
    transforms = [
        ("as rendered", lambda f, rng: f),
        ("light x0.35, noise 4", lambda f, rng: dimmed(f, rng, 0.35, 4)),
        ("light x0.2, noise 3", lambda f, rng: dimmed(f, rng, 0.2, 3)),
        ("light x0.2, noise 10", lambda f, rng: dimmed(f, rng, 0.2, 10)),
        ("light x0.1, noise 6", lambda f, rng: dimmed(f, rng, 0.1, 6)),
        ("JPEG quality 20", lambda f, rng: jpeg(f, 20)),
        ("ink faded to 40 %", lambda f, rng: faded(f, 0.4)),
        ("ink faded to 25 %", lambda f, rng: faded(f, 0.25)),
        ("squared paper, 16 px grid", lambda f, rng: squared(f, 16, int(rng.integers(0, 16)))),
        ("squared paper, 24 px grid", lambda f, rng: squared(f, 24, int(rng.integers(0, 24)))),
        ("motion blur 9 px", lambda f, rng: motion_blurred(f, 9)),
        ("a glare spot (washed 50-90 % towards white)", glare),
    ]
    for effects in ("clean", "camera"):
        for name, transform in transforms:
            out.append(("synthetic %s, %s" % (effects, name),
                        functools.partial(_synthetic, frames, seed, transform, effects=effects)))
    for effects in ("clean", "camera"):
        out.append(("synthetic %s, a page seen from afar (digits 11-43 px)" % effects,
                    functools.partial(_from_afar, frames, seed, effects)))
        out.append(("synthetic %s, a 1920x1440 camera up close (digits 120-360 px)" % effects,
                    functools.partial(_up_close, frames, seed, effects)))
        out.append(("one digit held up to the camera, %d-%d px tall (a third of the frame and more), %s"
                    % (HELD_UP_PX + (effects,)), functools.partial(_held_up, frames, seed, effects)))
        for degrees in (10, 20):
            out.append(("synthetic %s, the page turned by +-%d degrees" % (effects, degrees),
                        functools.partial(_tilted, frames, seed, effects, degrees)))
        out.append(("digits written on the lines of a ruled notebook, %s" % effects,
                    functools.partial(_notebook, frames, seed, effects)))
        out.append(("numbers written close together (digits may touch), %s" % effects,
                    functools.partial(_numbers, frames, seed, effects)))
        out.append(("digits written in pen, styles MNIST has few of (a 1 with a flag and a base, a crossed 7), %s"
                    % effects, functools.partial(_pen_written, frames, seed, effects)))
        out.append(("digits written in pen, upright (a straight 1 is a thin line), 30-130 px, %s" % effects,
                    functools.partial(_pen_written, frames, seed, effects, heights=(30, 130), slant=4.0)))
        out.append(("digits circled or boxed in pen, %s" % effects,
                    functools.partial(_enclosed, frames, seed, effects)))
        for desk in DESKS:
            out.append(("the page lying on a %s desk, %s" % (desk, effects),
                        functools.partial(_on_desk, frames, seed, effects, desk)))
    for factor in (2, 3):
        name = "the recorded scenes through a %dx%d camera (enlarged %dx, JPEG 90)" % (
            SIZE[0] * factor, SIZE[1] * factor, factor)
        out.append((name, functools.partial(_recorded_enlarged, frames, factor)))
    width, height = SIZE[0] * 2, SIZE[1] * 2
    for name, transform in [transforms[0], transforms[3], transforms[4]]:
        out.append(("synthetic camera through a %dx%d camera (rendered at that size), %s" % (width, height, name),
                    functools.partial(_high_resolution, frames, seed, transform, effects="camera")))
    for name, transform in transforms[:5]:  # every box on a blank page is a false one
        out.append(("blank page (no digits), camera, %s" % name,
                    functools.partial(_synthetic, frames, seed, transform, effects="camera", digits=0)))
    for name, transform in [transforms[0], transforms[4]]:
        out.append(("blank page (no digits), camera, through a %dx%d camera, %s" % (width, height, name),
                    functools.partial(_high_resolution, frames, seed, transform, effects="camera", digits=0)))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "artifacts", "cnn"),
                        help="bundle folder or manifest.json (default: artifacts/cnn)")
    parser.add_argument("--frames", type=int, default=60, help="frames per case (default 60)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.frames < 1:
        parser.error("--frames must be at least 1, got %d" % args.frames)
    try:
        manifest = mf.load(args.model)
        with open_backend(manifest, prefer="onnxruntime", intra_op_threads=1) as net:  # (one thread, like the pipeline)
            recognise = scenes.recogniser_from_infer(lambda batch: net.infer(batch_for_manifest(batch, manifest)),
                                                     manifest["preprocess"], manifest["labels"])
            print_table(recognise, args.frames, args.seed)
    except (mf.ManifestError, BackendError) as exc:
        sys.exit("stress_detection: %s" % exc)
    return 0


def print_table(recognise, frames, seed):
    """One Markdown row per stress case, printed as each case is scored."""
    print("| case | frames | digits | accuracy | recall | precision | false boxes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, render in cases(frames, seed):
        result = scenes.evaluate(recognise, render())
        rates = [_percent(result, key) for key in ("accuracy", "recall", "precision")]
        print("| %s | %d | %d | %s | %s | %s | %d |" % (
            (name, result["frames"], result["true_digits"]) + tuple(rates) + (result["false_positives"],)), flush=True)


def _percent(result, key):
    """A rate as "99.50 %", or "-" where it has nothing to count (no true digits, no detections)."""
    empty = result["true_digits"] == 0 if key in ("accuracy", "recall") else result["detections"] == 0
    return "-" if empty else "%.2f %%" % (100 * result[key])


if __name__ == "__main__":
    sys.exit(main())
