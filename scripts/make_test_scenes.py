#!/usr/bin/env python3
"""Write tests/data/scenes/{clean,camera}/: photos-like JPEG scenes of handwritten digits with truth.json.

A stand-in for recorded camera frames, made by a process deliberately different from the
synthetic camera (edge_runtime/synthetic.py), so the scene tests do not just test one generator
against itself:

- digits: MNIST *test* digits from index 5000 on (the synthetic sample ships indices < 5000);
- pen model: the digit is binarised, thickened with a round pen of random width, drawn at 4x
  supersampling and anti-aliased down, with a patchy ink density (ballpoint, felt tip);
- paper: a notebook page (light-blue ruled lines, a red margin line) that digits sit on and cross,
  photographed at an angle (perspective warp) with the table visible at some edges;
- light: a shadow gradient across the page, a dim or an overexposed photo, a warm or cold cast;
- camera: motion blur or defocus, sensor noise, JPEG quality 40-70.

The "clean" subset is black or blue ink on evenly lit plain paper, seen straight on, JPEG 90.
Ground truth boxes are the warped ink's bounding boxes, written to truth.json in the format
edge_runtime.scenes.load_scenes reads.

Usage: .venv/bin/python scripts/make_test_scenes.py [--out tests/data/scenes] [--clean 30] [--camera 45]
"""

import argparse
import os
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for folder in (ROOT, os.path.join(ROOT, "scripts")):
    if folder not in sys.path:
        sys.path.insert(0, folder)

from make_digit_sample import mnist_test_set  # noqa: E402

from edge_runtime.manifest import atomic_write_bytes, atomic_write_json  # noqa: E402

FIRST_TEST_INDEX = 5000  # digits below this index are in the synthetic camera's sample
WIDTH, HEIGHT = 640, 480
SUPERSAMPLE = 4
PAGE_W, PAGE_H = 760, 570  # the notebook page before it is photographed
EDGE = 10  # digits this close to the frame's edge are not drawn (unless cut by it)


def pen_alpha(rng, digit, height):
    """MNIST digit -> float32 ink coverage whose ink box is about ``height`` px tall, drawn with a round pen."""
    rows = np.flatnonzero(digit.max(axis=1) > 40)
    cols = np.flatnonzero(digit.max(axis=0) > 40)
    digit = digit[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    h, w = digit.shape
    big_h = height * SUPERSAMPLE
    big_w = max(SUPERSAMPLE, int(round(w * big_h / float(h))))
    shape = cv2.resize(digit, (big_w, big_h), interpolation=cv2.INTER_LINEAR) > 100
    # Thin the MNIST stroke to (near) its centre line, then redraw it with the pen's own width.
    dist = cv2.distanceTransform(shape.astype(np.uint8), cv2.DIST_L2, 5)
    core = (dist >= 0.45 * np.percentile(dist[shape], 90)).astype(np.uint8)
    pen = max(3, int(round(rng.uniform(0.05, 0.1) * big_h)))
    stroke = cv2.dilate(core, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen, pen)))
    stroke = cv2.copyMakeBorder(stroke, pen, pen, pen, pen, cv2.BORDER_CONSTANT, value=0)
    small = cv2.resize(
        stroke.astype(np.float32),
        (stroke.shape[1] // SUPERSAMPLE, stroke.shape[0] // SUPERSAMPLE),
        interpolation=cv2.INTER_AREA,
    )
    # Patchy ink: a ballpoint leaves lighter spots.
    density = cv2.resize(rng.uniform(0.8, 1.0, size=(6, 6)).astype(np.float32), small.shape[::-1])
    return np.clip(small * density, 0.0, 1.0)


def notebook_page(rng, ruled):
    page = np.empty((PAGE_H, PAGE_W, 3), np.float32)
    page[:] = (rng.uniform(235, 252), rng.uniform(238, 252), rng.uniform(240, 255))
    grain = cv2.GaussianBlur(rng.normal(0, 3, size=(PAGE_H, PAGE_W)).astype(np.float32), (0, 0), 1.2)
    page += grain[:, :, None]
    spacing = margin_x = None
    if ruled:
        spacing = int(rng.randint(26, 38))
        for y in range(int(rng.randint(10, spacing)), PAGE_H, spacing):
            cv2.line(page, (0, y), (PAGE_W - 1, y), (235, 200, 175), 1, cv2.LINE_AA)
        margin_x = int(rng.randint(50, 90))
        cv2.line(page, (margin_x, 0), (margin_x, PAGE_H - 1), (150, 150, 235), 2, cv2.LINE_AA)
    return page, spacing, margin_x


def place_digits(rng, sizes, margin_x):
    """Top-left corners on the page for (w, h) ink patches, keeping a clear gap between them (None: no room)."""
    placed, corners = [], []
    left = (margin_x or 20) + 15
    for width, height in sizes:
        corner = None
        for _attempt in range(60):
            if PAGE_W - width - 30 <= left or PAGE_H - height - 40 <= 40:
                break
            x = int(rng.randint(left, PAGE_W - width - 30))
            y = int(rng.randint(40, PAGE_H - height - 40))
            gap = 0.3 * max(height, width) + 12
            if all(
                x + width + gap < px or px + pw + gap < x or y + height + gap < py or py + ph + gap < y
                for px, py, pw, ph in placed
            ):
                placed.append((x, y, width, height))
                corner = (x, y)
                break
        corners.append(corner)
    return corners


def ink_colour(rng, clean):
    if clean:
        return (20.0, 20.0, 20.0) if rng.rand() < 0.6 else (130.0, 40.0, 20.0)
    kind = rng.rand()
    if kind < 0.4:
        return (rng.uniform(10, 60),) * 3
    if kind < 0.8:
        return (rng.uniform(120, 180), rng.uniform(40, 90), rng.uniform(10, 40))  # blue (BGR)
    return (rng.uniform(30, 70), rng.uniform(30, 70), rng.uniform(160, 220))  # red


def page_to_frame(rng, clean):
    """Perspective transform from the page to the 640x480 frame."""
    src = np.float32([[0, 0], [PAGE_W, 0], [PAGE_W, PAGE_H], [0, PAGE_H]])
    if clean:
        dst = np.float32([[-60, -45], [WIDTH + 60, -45], [WIDTH + 60, HEIGHT + 45], [-60, HEIGHT + 45]])
    else:
        jitter = rng.uniform(-70, 70, size=(4, 2)).astype(np.float32)
        base = np.float32([[-40, -30], [WIDTH + 40, -30], [WIDTH + 40, HEIGHT + 30], [-40, HEIGHT + 30]])
        dst = base + jitter
    return cv2.getPerspectiveTransform(src, dst)


def light_and_camera(rng, frame):
    h, w = frame.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * (xs / w - 0.5) + np.sin(angle) * (ys / h - 0.5)) + 0.5
    shadow = 1.0 - rng.uniform(0.2, 0.55) * np.clip(ramp, 0, 1) ** rng.uniform(1.0, 2.5)
    exposure = rng.choice([rng.uniform(0.45, 0.7), rng.uniform(0.85, 1.0), rng.uniform(1.15, 1.35)])
    cast = np.float32([rng.uniform(0.85, 1.05), 1.0, rng.uniform(0.95, 1.12)])
    frame = frame * (shadow * exposure)[:, :, None] * cast
    if rng.rand() < 0.5:  # motion blur
        length = int(rng.randint(3, 9))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1.0
        turn = cv2.getRotationMatrix2D(((length - 1) / 2.0, (length - 1) / 2.0), float(rng.uniform(0, 180)), 1.0)
        kernel = cv2.warpAffine(kernel, turn, (length, length))
        frame = cv2.filter2D(frame, -1, kernel / max(float(kernel.sum()), 1e-6))
    else:  # defocus
        frame = cv2.GaussianBlur(frame, (0, 0), rng.uniform(0.5, 1.6))
    frame = frame + rng.normal(0, rng.uniform(2, 8), size=frame.shape).astype(np.float32)
    return frame


def frame_box(warp, box):
    """The page box (x, y, w, h) seen in the frame: (x0, y0, x1, y1) of its warped corners."""
    x, y, w, h = box
    corners = np.float32([[[x, y]], [[x + w, y]], [[x + w, y + h]], [[x, y + h]]])
    seen = cv2.perspectiveTransform(corners, warp).reshape(-1, 2)
    return seen[:, 0].min(), seen[:, 1].min(), seen[:, 0].max(), seen[:, 1].max()


def render_scene(rng, images, labels, pool, clean):
    page, _, margin_x = notebook_page(rng, ruled=not clean and rng.rand() < 0.75)
    warp = page_to_frame(rng, clean)
    count = int(rng.randint(3, 7))
    picks = [int(pool[rng.randint(len(pool))]) for _ in range(count)]
    alphas = [pen_alpha(rng, images[index], int(rng.randint(38, 112))) for index in picks]
    corners = place_digits(rng, [a.shape[::-1] for a in alphas], margin_x)
    ids = np.zeros((PAGE_H, PAGE_W), np.uint8)
    colour = np.float32(ink_colour(rng, clean))
    digits = []
    for number, (index, alpha, corner) in enumerate(zip(picks, alphas, corners, strict=True), start=1):
        if corner is None:
            continue
        ah, aw = alpha.shape
        x0, y0 = corner
        ink_rows = np.flatnonzero(alpha.max(axis=1) > 0.05)
        ink_cols = np.flatnonzero(alpha.max(axis=0) > 0.05)
        ink_box = (x0 + ink_cols[0], y0 + ink_rows[0], ink_cols[-1] - ink_cols[0] + 1, ink_rows[-1] - ink_rows[0] + 1)
        fx0, fy0, fx1, fy1 = frame_box(warp, ink_box)
        inside = fx0 >= EDGE and fy0 >= EDGE and fx1 <= WIDTH - EDGE and fy1 <= HEIGHT - EDGE
        cut = fx0 < 0 or fy0 < 0 or fx1 > WIDTH or fy1 > HEIGHT
        if not inside and not cut:
            continue  # close to the edge but whole: ambiguous, so not drawn
        region = page[y0 : y0 + ah, x0 : x0 + aw]
        region[:] = region * (1.0 - alpha[:, :, None]) + colour * alpha[:, :, None]
        if inside:  # digits cut by the frame's edge are drawn but are not targets
            ids[y0 : y0 + ah, x0 : x0 + aw][alpha > 0.5] = number
        digits.append((number, {"digit": int(labels[index]), "mnist_test_index": index}))
    table = np.float32([rng.uniform(40, 110), rng.uniform(50, 120), rng.uniform(60, 140)])
    frame = cv2.warpPerspective(
        page, warp, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=table.tolist()
    )
    id_frame = cv2.warpPerspective(ids, warp, (WIDTH, HEIGHT), flags=cv2.INTER_NEAREST)
    if not clean:
        frame = light_and_camera(rng, frame)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    truth = []
    for number, digit in digits:
        ys, xs = np.nonzero(id_frame == number)
        if xs.size == 0:
            continue
        bbox = [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
        truth.append(dict(bbox=bbox, **digit))
    quality = 90 if clean else int(rng.randint(40, 71))
    ok, encoded = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    assert ok
    return encoded.tobytes(), truth


def write_subset(out, name, count, rng, images, labels, pool):
    folder = os.path.join(out, name)
    entries = {}
    for number in range(count):
        jpeg, truth = render_scene(rng, images, labels, pool, clean=(name == "clean"))
        file_name = "%s_%03d.jpg" % (name, number)
        atomic_write_bytes(os.path.join(folder, file_name), jpeg)
        entries[file_name] = {"digits": truth}
    atomic_write_json(
        os.path.join(folder, "truth.json"),
        {"format": "digit-scenes/1", "effect": name, "generator": "scripts/make_test_scenes.py", "images": entries},
    )
    return sum(len(e["digits"]) for e in entries.values())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(ROOT, "tests", "data", "scenes"), help="(default: %(default)s)")
    parser.add_argument("--clean", type=int, default=60, help="clean scenes (default: %(default)s)")
    parser.add_argument("--camera", type=int, default=45, help="camera-effect scenes (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=20261123, help="(default: %(default)s)")
    args = parser.parse_args(argv)
    images, labels = mnist_test_set()
    pool = np.arange(FIRST_TEST_INDEX, len(images))
    rng = np.random.RandomState(args.seed)
    for name, count in (("clean", args.clean), ("camera", args.camera)):
        digits = write_subset(args.out, name, count, rng, images, labels, pool)
        print(
            "make_test_scenes: %d %s scenes with %d digits in %s" % (count, name, digits, os.path.join(args.out, name))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
