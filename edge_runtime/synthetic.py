"""A virtual camera for ``synthetic://``: real MNIST test digits written on paper, with ground truth.

Each frame shows up to ``digits`` MNIST test digits (random heights 40-120 px, not
overlapping) as pen strokes on paper. ``effects="camera"`` adds what a cheap camera
pointed at a notebook sees: uneven light and vignetting, a soft shadow, blue/red/black
pens, sometimes ruled lines, blur, sensor noise and JPEG artefacts; ``effects="clean"``
is black ink on evenly lit white paper. ``last_truth`` holds the frame's ground truth:
a list of ``{"bbox": [x, y, w, h], "digit": d}`` in pixel coordinates.

Needs only numpy and cv2: the digits come from ``edge_runtime/data/mnist_test_sample.npz``
(made by ``scripts/make_digit_sample.py``) and, optionally, a bundle's ``reference.npz``.

URI form: ``synthetic://?seed=1&width=640&height=480&digits=6&effects=camera&fps=30&hold=1``.
"""

import os
import time

import cv2
import numpy as np

DATA_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SAMPLE_FILE = os.path.join(DATA_DIR, "mnist_test_sample.npz")
EFFECTS = ("camera", "clean")
MIN_DIGIT_PX, MAX_DIGIT_PX = 40, 120

_URI_TYPES = {
    "seed": int,
    "width": int,
    "height": int,
    "digits": int,
    "effects": str,
    "fps": float,
    "hold": int,
    "reference": str,
}


def parse_synthetic_uri(uri):
    """``synthetic://?seed=1&width=640`` -> {"seed": 1, "width": 640}; ValueError says what is wrong."""
    try:
        from urllib.parse import parse_qsl, urlsplit
    except ImportError:  # pragma: no cover - Python 2 is not supported
        raise
    text = str(uri)
    if not text.startswith("synthetic:"):
        raise ValueError("not a synthetic URI: %r (expected synthetic://?seed=1&digits=6)" % text)
    parts = urlsplit(text)
    query = parts.query
    if not query and parts.path.strip("/").startswith("?"):
        query = parts.path.strip("/")[1:]
    kwargs = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _URI_TYPES:
            raise ValueError("unknown synthetic:// option %r (known: %s)" % (key, ", ".join(sorted(_URI_TYPES))))
        try:
            kwargs[key] = _URI_TYPES[key](value)
        except ValueError:
            raise ValueError("synthetic:// option %s=%r is not a valid %s" % (key, value, _URI_TYPES[key].__name__))
    if "effects" in kwargs and kwargs["effects"] not in EFFECTS:
        raise ValueError("synthetic:// effects=%r: expected one of %s" % (kwargs["effects"], "|".join(EFFECTS)))
    for key in ("width", "height"):
        if key in kwargs and not 64 <= kwargs[key] <= 8192:
            raise ValueError("synthetic:// %s=%d: expected 64..8192 pixels" % (key, kwargs[key]))
    if "digits" in kwargs and not 0 <= kwargs["digits"] <= 64:
        raise ValueError("synthetic:// digits=%d: expected 0..64" % kwargs["digits"])
    return kwargs


def load_digit_pool(reference=None):
    """(images uint8 [N,28,28], labels int [N]) from the shipped sample plus an optional reference.npz."""
    images, labels = [], []
    with np.load(SAMPLE_FILE) as data:
        images.append(np.asarray(data["images"], np.uint8))
        labels.append(np.asarray(data["labels"], np.int64))
    if reference and os.path.isfile(reference):
        with np.load(reference) as data:
            if "images" in data and "labels" in data:
                ref_images = np.asarray(data["images"])
                if ref_images.ndim == 4:
                    ref_images = ref_images[..., 0]
                if ref_images.dtype != np.uint8:
                    ref_images = np.clip(ref_images * (255.0 if ref_images.max() <= 1.0 else 1.0), 0, 255)
                    ref_images = ref_images.astype(np.uint8)
                if ref_images.shape[1:] == (28, 28):
                    images.append(ref_images)
                    labels.append(np.asarray(data["labels"], np.int64).ravel()[: len(ref_images)])
    return np.concatenate(images), np.concatenate(labels)


def _ink_bbox(alpha, threshold=0.25):
    rows = np.flatnonzero((alpha > threshold).any(axis=1))
    cols = np.flatnonzero((alpha > threshold).any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1)


class SyntheticCamera(object):
    """A deterministic virtual camera; ``read()`` -> (True, BGR uint8 frame) like cv2.VideoCapture."""

    def __init__(self, width=640, height=480, digits=6, effects="camera", seed=0, fps=0, hold=1, reference=None,
                 margin=8, digit_px=(MIN_DIGIT_PX, MAX_DIGIT_PX)):
        """``margin``: pixels every digit keeps from the frame's edge (and, plus 15 % of its height, from
        the other digits); ``digit_px``: (shortest, tallest) digit in pixels; the other arguments are the
        URI's options."""
        if effects not in EFFECTS:
            raise ValueError("effects=%r: expected one of %s" % (effects, "|".join(EFFECTS)))
        self.width, self.height = int(width), int(height)
        self.digits, self.effects = int(digits), effects
        self.seed, self.fps, self.hold = int(seed), float(fps), max(1, int(hold))
        self.margin = int(margin)
        self.digit_px = (int(digit_px[0]), int(digit_px[1]))
        if not 8 <= self.digit_px[0] <= self.digit_px[1]:
            raise ValueError("digit_px=%r: expected (shortest, tallest) with 8 <= shortest <= tallest" % (digit_px,))
        self.images, self.labels = load_digit_pool(reference)
        self.frame_index = 0
        self.last_truth = []
        self._held = None
        self._next_time = None
        self._open = True

    # cv2.VideoCapture look-alike --------------------------------------------
    def isOpened(self):  # noqa: N802 - mirrors cv2.VideoCapture
        return self._open

    def release(self):
        self._open = False

    def get(self, prop):
        table = {
            cv2.CAP_PROP_FRAME_WIDTH: self.width,
            cv2.CAP_PROP_FRAME_HEIGHT: self.height,
            cv2.CAP_PROP_FPS: self.fps,
        }
        return float(table.get(prop, 0.0))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __iter__(self):
        while True:
            ok, frame = self.read()
            if not ok:
                return
            yield frame

    def read(self):
        """Next frame (a new scene every ``hold`` frames); paced to ``fps`` when fps > 0."""
        if not self._open:
            return False, None
        if self.fps > 0:
            now = time.monotonic()
            if self._next_time is not None and now < self._next_time:
                time.sleep(self._next_time - now)
            self._next_time = max(now, self._next_time or now) + 1.0 / self.fps
        scene = self.frame_index // self.hold
        if self._held is None or self._held[0] != scene:
            frame, truth = self.render(scene)
            self._held = (scene, frame, truth)
        _, frame, truth = self._held
        self.frame_index += 1
        self.last_truth = [dict(bbox=list(t["bbox"]), digit=t["digit"]) for t in truth]
        return True, frame.copy()

    # rendering -----------------------------------------------------------------
    def render(self, scene):
        """Scene number -> (BGR frame, truth); the same (seed, scene) always gives the same frame.

        Each truth item also names its "source": the index of the digit in ``self.images``.
        """
        rng = np.random.RandomState((self.seed * 1000003 + scene * 7919) % (2**32))
        camera = self.effects == "camera"
        paper = self._paper(rng, camera)
        count = rng.randint(max(1, (self.digits + 1) // 2), self.digits + 1) if self.digits > 0 else 0
        ink_colour = self._ink_colour(rng, camera)
        frame = paper
        truth, placed = [], []
        for _ in range(count):
            shortest, tallest = self.digit_px
            size = min(int(rng.randint(shortest, tallest + 1)), int(0.8 * min(self.width, self.height)))
            index = rng.randint(len(self.images))
            alpha = self._stroke_alpha(rng, self.images[index], size, camera)
            box = _ink_bbox(alpha)
            if box is None:
                continue
            corner = self._free_corner(rng, box[2], box[3], placed, self.margin)
            if corner is None:
                continue
            placed.append((corner[0], corner[1], box[2], box[3]))
            # Draw the stroke patch so that its ink box lands on the free spot.
            x0, y0 = corner[0] - box[0], corner[1] - box[1]
            ax0, ay0 = max(0, -x0), max(0, -y0)
            ax1 = min(alpha.shape[1], self.width - x0)
            ay1 = min(alpha.shape[0], self.height - y0)
            a = alpha[ay0:ay1, ax0:ax1, None]
            region = frame[y0 + ay0 : y0 + ay1, x0 + ax0 : x0 + ax1]
            colour = ink_colour if not camera or rng.rand() < 0.8 else self._ink_colour(rng, camera)
            region[:] = region * (1.0 - a) + np.asarray(colour, np.float32) * a
            bbox = [corner[0], corner[1], box[2], box[3]]
            truth.append({"bbox": bbox, "digit": int(self.labels[index]), "source": int(index)})
        if camera:
            frame = self._camera_effects(rng, frame)
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        if camera:
            quality = int(rng.randint(45, 90))
            ok, encoded = cv2.imencode(".jpg", frame, [int(cv2.IMWRITE_JPEG_QUALITY), quality])
            if ok:
                frame = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
        truth.sort(key=lambda t: (t["bbox"][1], t["bbox"][0]))
        return frame, truth

    def _paper(self, rng, camera):
        h, w = self.height, self.width
        if not camera:
            return np.full((h, w, 3), 245.0, np.float32)
        tint = np.array([rng.uniform(200, 250), rng.uniform(215, 252), rng.uniform(220, 255)], np.float32)
        paper = np.empty((h, w, 3), np.float32)
        paper[:] = tint
        if rng.rand() < 0.4:  # ruled notebook lines (light blue or gray)
            spacing = rng.randint(22, 40)
            offset = rng.randint(0, spacing)
            colour = np.array([220, 190, 160] if rng.rand() < 0.7 else [170, 170, 170], np.float32)
            thickness = rng.randint(1, 3)
            for yy in range(offset, h, spacing):
                cv2.line(paper, (0, yy), (w - 1, yy + int(rng.randint(-3, 4))), colour.tolist(), int(thickness))
        # uneven light: a linear gradient times a vignette
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        gx, gy = rng.uniform(-0.35, 0.35, size=2)
        light = 1.0 + gx * (xs / w - 0.5) + gy * (ys / h - 0.5)
        radius = ((xs / w - 0.5) ** 2 + (ys / h - 0.5) ** 2) * rng.uniform(0.0, 0.8)
        light = light * (1.0 - radius) * rng.uniform(0.75, 1.05)
        if rng.rand() < 0.5:  # a soft shadow from a hand or a phone
            shadow = np.zeros((h, w), np.float32)
            cx, cy = rng.randint(0, w), rng.randint(0, h)
            axes = (int(rng.randint(w // 6, w // 2)), int(rng.randint(h // 6, h // 2)))
            cv2.ellipse(shadow, (int(cx), int(cy)), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
            k = int(rng.randint(31, 91)) | 1
            shadow = cv2.GaussianBlur(shadow, (k, k), 0)
            light = light * (1.0 - rng.uniform(0.2, 0.45) * shadow)
        return paper * light[:, :, None]

    def _free_corner(self, rng, w, h, placed, margin=8):
        """Top-left corner for a w x h ink box, clear of the frame edge and of the placed boxes (or None)."""
        if self.width - w - 2 * margin <= 0 or self.height - h - 2 * margin <= 0:
            return None
        for _attempt in range(40):
            x = int(rng.randint(margin, self.width - w - margin))
            y = int(rng.randint(margin, self.height - h - margin))
            if all(
                x + w + gap < px or px + pw + gap < x or y + h + gap < py or py + ph + gap < y
                for px, py, pw, ph in placed
                for gap in [margin + 0.15 * max(h, ph)]
            ):
                return x, y
        return None

    def _ink_colour(self, rng, camera):
        if not camera:
            return (25.0, 25.0, 25.0)
        choice = rng.rand()
        if choice < 0.45:
            v = rng.uniform(15, 70)
            return (v, v, v)  # black/graphite
        if choice < 0.8:
            return (rng.uniform(110, 170), rng.uniform(30, 80), rng.uniform(10, 50))  # blue pen (BGR)
        return (rng.uniform(20, 60), rng.uniform(20, 60), rng.uniform(150, 210))  # red pen

    def _stroke_alpha(self, rng, digit, size, camera):
        """MNIST 28x28 -> float32 ink coverage [0, 1] whose 20 px box becomes ``size`` px."""
        side = int(round(size * 28.0 / 20.0))
        alpha = cv2.resize(digit, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
        if camera and rng.rand() < 0.5:  # a thicker or thinner pen
            k = max(1, int(round(size / 40.0)))
            kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
            alpha = cv2.dilate(alpha, kernel) if rng.rand() < 0.6 else cv2.erode(alpha, np.ones((2, 2), np.uint8))
        # pen ink: a sharp-edged stroke rather than MNIST's soft ramp
        alpha = np.clip((alpha - 0.3) / 0.35, 0.0, 1.0)
        strength = rng.uniform(0.8, 1.0) if camera else 1.0
        return alpha * strength

    def _camera_effects(self, rng, frame):
        if rng.rand() < 0.7:
            sigma = rng.uniform(0.3, 1.4)
            frame = cv2.GaussianBlur(frame, (0, 0), sigma)
        if rng.rand() < 0.2:  # a little motion blur
            length = int(rng.randint(3, 7))
            kernel = np.zeros((length, length), np.float32)
            kernel[length // 2, :] = 1.0 / length
            rotation = cv2.getRotationMatrix2D(
                (length / 2.0 - 0.5, length / 2.0 - 0.5), float(rng.uniform(0, 180)), 1.0
            )
            kernel = cv2.warpAffine(kernel, rotation, (length, length))
            kernel /= max(kernel.sum(), 1e-6)
            frame = cv2.filter2D(frame, -1, kernel)
        noise = rng.normal(0.0, rng.uniform(1.5, 6.0), size=frame.shape[:2]).astype(np.float32)
        return frame + noise[:, :, None]
