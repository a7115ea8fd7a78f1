"""Camera and file sources behind one URI argument (as jetson-utils' videoSource does).

    src = open_source("csi://0?width=1280&height=720&fps=60")
    ok, frame, name = src.read()     # BGR uint8 frame; name = file name or frame index
    src.close()

URIs: ``csi://N`` (nvarguscamerasrc through GStreamer), ``/dev/videoN`` or
``v4l2:///dev/videoN``, ``rtsp://...``, a video file, one image, a folder or glob
of images, ``synthetic://...`` (edge_runtime.synthetic) and ``auto`` (a camera if
there is one, else synthetic://). Live sources (cameras, RTSP) get a grab thread
that keeps only the newest frame and retries a camera that drops out.

Python 3.6, stdlib + numpy + cv2 only.
"""

import glob
import logging
import os
import threading
import time
from urllib.parse import parse_qs, urlsplit

from .errors import UserError

LOG = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".h264")

CSI_DEFAULTS = {"width": 1280, "height": 720, "fps": 30, "flip": 0}
GST_HINT = (
    "this OpenCV (cv2 %s) was built without GStreamer, which %s needs. pip's opencv-python wheels have "
    "no GStreamer: on a Jetson use JetPack's python3-opencv (sudo apt-get install python3-opencv) from a "
    "venv created with --system-site-packages, and uninstall opencv-python from the venv"
)


# --------------------------------------------------------------------------
# OpenCV capabilities and pipeline strings
# --------------------------------------------------------------------------


def cv2_has_gstreamer(build_info=None):
    """True when cv2.getBuildInformation() lists GStreamer as YES."""
    if build_info is None:
        import cv2

        build_info = cv2.getBuildInformation()
    for line in build_info.splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def csi_pipeline(sensor_id=0, width=1280, height=720, fps=30, flip=0, out_width=None, out_height=None):
    """The nvarguscamerasrc GStreamer pipeline for cv2.VideoCapture(..., cv2.CAP_GSTREAMER)."""
    out_width = out_width or width
    out_height = out_height or height
    return (
        "nvarguscamerasrc sensor-id=%d ! video/x-raw(memory:NVMM), width=%d, height=%d, framerate=%d/1 ! "
        "nvvidconv flip-method=%d ! video/x-raw, width=%d, height=%d, format=BGRx ! "
        "videoconvert ! video/x-raw, format=BGR ! appsink drop=1 max-buffers=1"
        % (int(sensor_id), int(width), int(height), int(fps), int(flip), int(out_width), int(out_height))
    )


def rtsp_pipeline(url, latency=200):
    """A GStreamer pipeline for an RTSP stream (H.264, software decode: works everywhere)."""
    return (
        "rtspsrc location=%s latency=%d ! rtph264depay ! h264parse ! avdec_h264 ! "
        "videoconvert ! video/x-raw, format=BGR ! appsink drop=1 max-buffers=1" % (url, int(latency))
    )


def _query_ints(query, names, uri):
    params = parse_qs(query)
    unknown = sorted(set(params) - set(names))
    if unknown:
        raise UserError(
            "source %s: unknown option(s) %s; expected any of %s" % (uri, ", ".join(unknown), ", ".join(names))
        )
    values = {}
    for key, items in params.items():
        try:
            values[key] = int(items[-1])
        except ValueError:
            raise UserError("source %s: %s=%r is not an integer" % (uri, key, items[-1]))
        if values[key] < 0:
            raise UserError("source %s: %s must be >= 0" % (uri, key))
    return values


def parse_csi_uri(uri):
    """csi://N?width=&height=&fps=&flip=&out_width=&out_height= -> kwargs for csi_pipeline."""
    parts = urlsplit(uri)
    sensor = parts.netloc or "0"
    if not sensor.isdigit():
        raise UserError("source %s: expected csi://N with a sensor number, e.g. csi://0" % uri)
    opts = dict(CSI_DEFAULTS)
    opts.update(_query_ints(parts.query, ("width", "height", "fps", "flip", "out_width", "out_height"), uri))
    if opts["flip"] > 7:
        raise UserError("source %s: flip must be 0..7 (nvvidconv flip-method)" % uri)
    opts["sensor_id"] = int(sensor)
    return opts


# --------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------


def bgr_frame(frame):
    """Return a 3-channel uint8 BGR view of ``frame`` (gray, BGRA, 16-bit, float accepted) or None."""
    import cv2
    import numpy as np

    if frame is None or not hasattr(frame, "ndim") or frame.size == 0:
        return None
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (3, 4)):
        return None
    if frame.dtype != np.uint8:
        if frame.dtype == np.uint16:
            frame = (frame >> 8).astype(np.uint8)
        elif frame.dtype.kind == "f":
            scale = 255.0 if float(np.nanmax(frame)) <= 1.0 else 1.0
            frame = np.clip(np.nan_to_num(frame) * scale, 0, 255).astype(np.uint8)
        else:
            frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame


# --------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------


class Source(object):
    """read() -> (ok, frame, name); ok False = end of stream (or a failure, see ``error``)."""

    is_live = False
    temporal = None  # frames continue each other (smoothing helps); None = same as is_live
    # The next frame is there to be had (a file to decode, frames in memory): the pipeline reads it
    # while the previous one is processed. False: read on demand, when recognition is idle (the newest
    # camera frame, no time queued).
    read_ahead = False
    # Frames there for the taking (in memory, not live): reading costs nothing, so the pipeline's
    # detection thread reads them itself instead of a capture thread handing them over.
    read_in_worker = False
    frame_time = None  # live sources: time.perf_counter() when the last frame read arrived (camera grab)
    uri = ""
    error = None  # set when the stream ended because of a failure

    def __init__(self):
        self.skipped = 0  # frames/images that could not be read and were skipped
        self.dropped = 0  # live frames replaced by a newer one before anyone read them
        self.last_truth = None

    def read(self):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False

    def describe(self):
        return {"uri": self.uri, "kind": type(self).__name__, "live": self.is_live}


class ImageFilesSource(Source):
    """Every image in order, none dropped; unreadable ones are skipped with a warning and counted."""

    read_ahead = True

    def __init__(self, paths, uri=""):
        Source.__init__(self)
        self.paths = list(paths)
        self.uri = uri
        self._next = 0
        self.skipped_files = []

    def __len__(self):
        return len(self.paths)

    def read(self):
        import cv2

        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            frame = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            frame = bgr_frame(frame)
            if frame is None:
                self.skipped += 1
                self.skipped_files.append(path)
                LOG.warning("skipping %s: not a readable image", path)
                continue
            return True, frame, os.path.basename(path)
        return False, None, None


class VideoFileSource(Source):
    """Frames of a video file in order (lossless)."""

    read_ahead = True

    def __init__(self, path):
        import cv2

        Source.__init__(self)
        self.uri = path
        self._cap = cv2.VideoCapture(path)
        if not self._cap.isOpened():
            raise UserError(
                "cannot open video file %s: OpenCV could not decode it (is it a video? "
                "check `python3 -m edge_runtime info` for FFmpeg/GStreamer support)" % path
            )
        self._index = 0
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 0.0

    def read(self):
        if self._cap is None:
            return False, None, None
        ok, frame = self._cap.read()
        if not ok:
            return False, None, None
        name = str(self._index)
        self._index += 1
        frame = bgr_frame(frame)
        if frame is None:
            self.skipped += 1
            return self.read()
        return True, frame, name

    def close(self):
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class MemorySource(Source):
    """Frames held in memory (benchmarks, tests). ``loops`` passes over them (None = forever).

    Not live: every frame is waiting, so the pipeline's detection thread reads them itself (no
    capture thread; see edge_runtime/pipeline.py for the side-by-side figures). ``is_live``: a
    capture thread reads them on demand, like a camera."""

    def __init__(self, frames, loops=1, names=None, is_live=False, truths=None):
        Source.__init__(self)
        self.read_ahead = self.read_in_worker = not is_live
        self.frames = list(frames)
        self.names = list(names) if names is not None else None
        self.truths = list(truths) if truths is not None else None
        self.loops = loops
        self.is_live = is_live
        self.uri = "memory://%d" % len(self.frames)
        self._i = 0

    def read(self):
        n = len(self.frames)
        if n == 0 or (self.loops is not None and self._i >= n * self.loops):
            return False, None, None
        k = self._i % n
        name = self.names[k] if self.names is not None else str(self._i)
        self.last_truth = self.truths[k] if self.truths is not None else None
        self._i += 1
        return True, self.frames[k], name


class SyntheticSource(Source):
    """The built-in virtual camera (edge_runtime.synthetic): behaves like a live camera."""

    is_live = True

    def __init__(self, uri):
        Source.__init__(self)
        self.uri = uri
        try:
            from . import synthetic
        except ImportError as exc:
            raise UserError("synthetic:// is not available in this installation (%s)" % exc)
        try:
            kwargs = synthetic.parse_synthetic_uri(uri)
        except ValueError as exc:
            raise UserError("source %s: %s" % (uri, exc))
        self.camera = synthetic.SyntheticCamera(**kwargs)
        # a new scene every frame unless ?hold=N: then smoothing across frames would mix digits
        self.temporal = int(getattr(self.camera, "hold", 1)) > 1
        self.fps = float(getattr(self.camera, "fps", 0) or 0)
        self._index = 0

    def read(self):
        ok, frame = self.camera.read()
        if not ok:
            return False, None, None
        self.last_truth = getattr(self.camera, "last_truth", None)
        self.frame_time = time.perf_counter()  # the virtual camera delivers it now
        name = str(self._index)
        self._index += 1
        return True, frame, name

    def close(self):
        close = getattr(self.camera, "close", None)
        if close is not None:
            close()


class CaptureSource(Source):
    """A live cv2.VideoCapture with a grab thread that keeps only the newest frame.

    ``open_capture()`` returns an opened cv2.VideoCapture (or one whose isOpened() is
    False). When the camera drops out, it is reopened with exponential back-off
    (``retries`` attempts); after that read() returns (False, None, None) and
    ``error`` says what happened.
    """

    is_live = True

    def __init__(self, uri, open_capture, retries=5, backoff_s=0.5, max_backoff_s=8.0, first_frame_timeout_s=10.0):
        Source.__init__(self)
        self.uri = uri
        self._open_capture = open_capture
        self.retries = int(retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.first_frame_timeout_s = float(first_frame_timeout_s)
        self.reconnects = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._frame = None
        self._grabbed_at = None
        self._seq = 0
        self._read_seq = 0
        self._cap = open_capture()
        if self._cap is None or not self._cap.isOpened():
            raise UserError(
                "cannot open camera %s; check it is connected and not used by another program "
                "(`ls /dev/video*`; for CSI: `sudo systemctl restart nvargus-daemon`), "
                "or try --source synthetic://" % uri
            )
        self._thread = threading.Thread(target=self._grab_loop, name="grab", daemon=True)
        self._thread.start()

    def _grab_loop(self):
        failures = 0
        while not self._stop.is_set():
            ok, frame = self._cap.read() if self._cap is not None else (False, None)
            if ok and frame is not None and getattr(frame, "size", 0):
                failures = 0
                with self._cond:
                    if self._seq > self._read_seq:
                        self.dropped += 1
                    self._frame = frame
                    self._grabbed_at = time.perf_counter()
                    self._seq += 1
                    self._cond.notify_all()
                continue
            if self._stop.is_set():
                break
            failures += 1
            if failures > self.retries:
                with self._cond:
                    self.error = "camera %s stopped delivering frames; gave up after %d reconnect attempts" % (
                        self.uri, self.retries)
                    self._cond.notify_all()
                return
            delay = min(self.backoff_s * (2 ** (failures - 1)), self.max_backoff_s)
            LOG.warning("camera %s delivered no frame; reconnecting in %.1f s (attempt %d of %d)",
                        self.uri, delay, failures, self.retries)
            self._release()
            if self._stop.wait(delay):
                break
            try:
                self._cap = self._open_capture()
                self.reconnects += 1
            except Exception as exc:  # a driver error while reopening counts as one failed attempt
                LOG.warning("reopening %s failed: %s", self.uri, exc)
                self._cap = None

    def read(self):
        started = time.time()
        with self._cond:
            while self._seq == self._read_seq and self.error is None and not self._stop.is_set():
                if self._seq == 0 and time.time() - started > self.first_frame_timeout_s:
                    self.error = "camera %s opened but delivered no frame within %.0f s" % (
                        self.uri, self.first_frame_timeout_s)
                    break
                self._cond.wait(0.1)
            if self._seq > self._read_seq:
                self._read_seq = self._seq
                self.frame_time = self._grabbed_at
                return True, self._frame, str(self._seq - 1)
            return False, None, None

    def _release(self):
        cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except Exception:
                pass

    def close(self):
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        self._release()


# --------------------------------------------------------------------------
# URI -> source
# --------------------------------------------------------------------------


def camera_available():
    """The URI `auto` resolves to: a CSI camera on a Jetson, else /dev/video0, else None."""
    if os.path.exists("/dev/video0"):
        if os.path.exists("/etc/nv_tegra_release") and os.path.exists("/tmp/argus_socket"):
            return "csi://0"
        return "/dev/video0"
    return None


def resolve_auto(uri):
    if uri != "auto":
        return uri
    camera = camera_available()
    if camera:
        LOG.info("source auto: using camera %s", camera)
        return camera
    LOG.info("source auto: no camera found (/dev/video0 missing); using synthetic://")
    return "synthetic://"


def _open_csi(uri, cv2):
    opts = parse_csi_uri(uri)
    if not cv2_has_gstreamer():
        raise UserError(GST_HINT % (cv2.__version__, "csi://"))
    pipeline = csi_pipeline(**opts)
    LOG.info("CSI pipeline: %s", pipeline)
    return CaptureSource(uri, lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER))


def _open_v4l2(uri, cv2):
    parts = urlsplit(uri) if uri.startswith("v4l2://") else None
    path = parts.path if parts else uri.split("?", 1)[0]
    query = parts.query if parts else (uri.split("?", 1)[1] if "?" in uri else "")
    opts = _query_ints(query, ("width", "height", "fps"), uri)
    if not os.path.exists(path):
        raise UserError(
            "no camera at %s; list cameras with `ls /dev/video*`, "
            "or use --source synthetic:// to run without one" % path
        )
    digits = path[len("/dev/video"):] if path.startswith("/dev/video") else ""

    def open_capture():
        target = int(digits) if digits.isdigit() else path
        cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        if "width" in opts:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, opts["width"])
        if "height" in opts:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, opts["height"])
        if "fps" in opts:
            cap.set(cv2.CAP_PROP_FPS, opts["fps"])
        return cap

    return CaptureSource(uri, open_capture)


def _open_rtsp(uri, cv2):
    if cv2_has_gstreamer():
        pipeline = rtsp_pipeline(uri)
        return CaptureSource(uri, lambda: cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER))
    return CaptureSource(uri, lambda: cv2.VideoCapture(uri, cv2.CAP_FFMPEG))


def image_paths(pattern_or_folder):
    """Sorted image files of a folder, or of a glob pattern."""
    if os.path.isdir(pattern_or_folder):
        names = sorted(os.listdir(pattern_or_folder))
        paths = [os.path.join(pattern_or_folder, n) for n in names]
    else:
        paths = sorted(glob.glob(pattern_or_folder))
    return [p for p in paths if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS)]


def open_source(uri):
    """Open any supported source URI (see the module docstring); raise UserError with a fix."""
    import cv2

    uri = resolve_auto(str(uri).strip())
    if not uri:
        raise UserError("empty --source; give a camera (csi://0, /dev/video0), a file, a folder or synthetic://")
    lower = uri.lower()
    if lower.startswith("synthetic:"):
        return SyntheticSource(uri)
    if lower.startswith("csi://"):
        return _open_csi(uri, cv2)
    if lower.startswith("v4l2://") or lower.startswith("/dev/video"):
        return _open_v4l2(uri, cv2)
    if lower.startswith("rtsp://") or lower.startswith("rtsps://"):
        return _open_rtsp(uri, cv2)
    if "://" in uri and not lower.startswith("file://"):
        raise UserError(
            "unknown source scheme in %r; expected csi://N, /dev/videoN, v4l2:///dev/videoN, rtsp://..., "
            "synthetic://, a video file, an image, a folder or a glob such as 'scans/*.png'" % uri
        )
    path = uri[len("file://"):] if lower.startswith("file://") else uri
    if os.path.isdir(path) or any(ch in path for ch in "*?["):
        paths = image_paths(path)
        if not paths:
            raise UserError(
                "no images (%s) found in %s" % (" ".join(IMAGE_EXTENSIONS), path)
            )
        return ImageFilesSource(paths, uri=uri)
    if not os.path.exists(path):
        raise UserError("source %s does not exist; expected a camera URI, a file, a folder or a glob" % path)
    if path.lower().endswith(IMAGE_EXTENSIONS):
        return ImageFilesSource([path], uri=uri)
    if path.lower().endswith(VIDEO_EXTENSIONS):
        return VideoFileSource(path)
    # unknown extension: try as an image, then as a video
    if cv2.imread(path, cv2.IMREAD_UNCHANGED) is not None:
        return ImageFilesSource([path], uri=uri)
    return VideoFileSource(path)
