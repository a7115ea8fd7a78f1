"""Outputs of the live pipeline: overlay window, annotated video, MJPEG over HTTP, JSONL, console.

Every output has ``open()``, ``write(result, live_stats)`` and ``close()`` and is
used as a context manager by the caller. ``result`` is a pipeline.FrameResult.
The JSONL output is ``is_final``: it runs after the others so its ``total`` covers them.

Python 3.6: stdlib (http.server + socketserver.ThreadingMixIn) + numpy + cv2.
"""

import errno
import json
import logging
import os
import socket
import socketserver
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from .errors import UserError

LOG = logging.getLogger(__name__)

GREEN = (60, 200, 60)
ORANGE = (0, 140, 255)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
TIMING_KEYS = ("capture", "preprocess", "infer", "output", "total")


class Output(object):
    is_final = False
    wants_stop = False
    needs_display = False

    def open(self):
        return self

    def write(self, result, live_stats):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc, tb):
        self.close()
        return False


# --------------------------------------------------------------------------
# Overlay
# --------------------------------------------------------------------------


def detection_text(det):
    return "?" if det["low_confidence"] else str(det["digit"])


def status_line(live_stats, timings, n_digits):
    t = timings or {}
    return "FPS %.1f | cap %.1f pre %.1f inf %.1f out %.1f ms | %d digits" % (
        live_stats.get("fps", 0.0), t.get("capture", 0.0), t.get("preprocess", 0.0), t.get("infer", 0.0),
        t.get("output", 0.0), n_digits)


def display_timings(result, live_stats):
    """This frame's stage times; output and total (known only after the outputs ran) from the previous frame."""
    timings = dict(live_stats.get("last_ms") or {})
    timings.update(result.timings)
    return timings


def annotate(frame, result, live_stats):
    """A copy of the frame with boxes, digits (``?`` when unsure), confidences, FPS and stage times."""
    import cv2

    img = frame.copy()
    h, w = img.shape[:2]
    scale = max(0.4, min(w, h) / 720.0)
    thick = max(1, int(round(2 * scale)))
    for det in result.detections:
        x, y, bw, bh = det["bbox"]
        color = ORANGE if det["low_confidence"] else GREEN
        cv2.rectangle(img, (x, y), (x + bw, y + bh), color, thick)
        label = "%s %.2f" % (detection_text(det), det["confidence"])
        ty = y - 4 if y > 20 * scale else y + bh + int(18 * scale)
        cv2.putText(img, label, (x, ty), cv2.FONT_HERSHEY_SIMPLEX, 0.9 * scale, color, thick, cv2.LINE_AA)
    text = status_line(live_stats, display_timings(result, live_stats), len(result.detections))
    bar = int(24 * scale)
    cv2.rectangle(img, (0, 0), (w, bar), BLACK, -1)
    cv2.putText(img, text, (4, bar - int(7 * scale)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, WHITE, 1, cv2.LINE_AA)
    return img


class _Annotated(object):
    """Annotate a frame once per result, for every output that needs it."""

    def __init__(self):
        self._key = None
        self._img = None

    def get(self, result, live_stats):
        if self._key is not result:
            self._img = annotate(result.frame, result, live_stats)
            self._key = result
        return self._img


_ANNOTATED = threading.local()


def annotated_frame(result, live_stats):
    cache = getattr(_ANNOTATED, "cache", None)
    if cache is None:
        cache = _ANNOTATED.cache = _Annotated()
    return cache.get(result, live_stats)


# --------------------------------------------------------------------------
# JSONL
# --------------------------------------------------------------------------


def frame_record(result):
    """The DESIGN.md JSONL record for one frame (bbox in input-frame pixels)."""
    timing = {}
    for key in TIMING_KEYS:
        if key in result.timings:
            timing[key] = round(float(result.timings[key]), 3)
    return {
        "frame": int(result.index),
        "source": str(result.name),
        "detections": [
            {"bbox": list(d["bbox"]), "digit": d["digit"], "confidence": d["confidence"],
             "low_confidence": d["low_confidence"]}
            for d in result.detections
        ],
        "timing_ms": timing,
    }


class JsonlOutput(Output):
    """One JSON object per frame, line-buffered and flushed: a killed run leaves complete lines."""

    is_final = True

    def __init__(self, path):
        self.path = str(path)
        self._fh = None
        self.lines = 0

    def open(self):
        if self.path == "-":
            self._fh = sys.stdout
        else:
            folder = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(folder):
                os.makedirs(folder)
            try:
                self._fh = open(self.path, "w", buffering=1)
            except (IOError, OSError) as exc:
                raise UserError("cannot write --jsonl %s: %s" % (self.path, exc.strerror or exc))
        return self

    def write(self, result, live_stats):
        self._fh.write(json.dumps(frame_record(result), separators=(", ", ": ")) + "\n")
        self._fh.flush()
        self.lines += 1

    def close(self):
        if self._fh is not None and self._fh is not sys.stdout:
            self._fh.close()
        self._fh = None


# --------------------------------------------------------------------------
# Annotated video (atomic)
# --------------------------------------------------------------------------


class VideoOutput(Output):
    """Annotated frames to an .mp4 (mp4v) or .avi (MJPG); written to a temp file, renamed on close."""

    def __init__(self, path, fps=30.0):
        self.path = str(path)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self._writer = None
        self._size = None
        self.frames = 0
        folder, base = os.path.split(os.path.abspath(self.path))
        stem, ext = os.path.splitext(base)
        self.ext = ext.lower() or ".mp4"
        self.tmp_path = os.path.join(folder, ".%s.partial-%d%s" % (stem, os.getpid(), self.ext))

    def open(self):
        folder = os.path.dirname(self.tmp_path)
        if not os.path.isdir(folder):
            try:
                os.makedirs(folder)
            except OSError as exc:
                raise UserError("cannot create the folder for --save %s: %s" % (self.path, exc))
        if self.ext not in (".mp4", ".avi", ".mkv", ".mov"):
            raise UserError("--save %s: expected a .mp4 (or .avi/.mkv/.mov) file name" % self.path)
        return self

    def _open_writer(self, size):
        import cv2

        fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.ext == ".avi" else "mp4v"))
        writer = cv2.VideoWriter(self.tmp_path, fourcc, self.fps, size)
        if not writer.isOpened():
            raise UserError("OpenCV cannot write video %s (codec %s); try a .avi name for --save"
                            % (self.path, "MJPG" if self.ext == ".avi" else "mp4v"))
        self._writer = writer
        self._size = size

    def write(self, result, live_stats):
        import cv2

        img = annotated_frame(result, live_stats)
        size = (img.shape[1], img.shape[0])
        if self._writer is None:
            self._open_writer(size)
        elif size != self._size:
            img = cv2.resize(img, self._size)
        self._writer.write(img)
        self.frames += 1

    def close(self):
        if self._writer is None:
            return
        self._writer.release()
        self._writer = None
        os.replace(self.tmp_path, self.path)
        LOG.info("wrote %d annotated frames to %s", self.frames, self.path)

    def abort(self):
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if os.path.exists(self.tmp_path):
            os.unlink(self.tmp_path)


# --------------------------------------------------------------------------
# OpenCV window
# --------------------------------------------------------------------------


def display_available():
    """True when a GUI window could appear (an X11/Wayland display on Linux; always elsewhere)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def cv2_has_gui(build_info=None):
    """False for OpenCV builds without highgui windows (pip's opencv-python-headless: "GUI: NONE")."""
    if build_info is None:
        import cv2

        build_info = cv2.getBuildInformation()
    for line in build_info.splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() != "NONE"
    return True


class WindowOutput(Output):
    """cv2.imshow with the overlay; q or Esc (or closing the window) stops the run."""

    needs_display = True

    def __init__(self, title="edge_runtime"):
        self.title = title
        self._open = False

    def open(self):
        import cv2

        try:
            cv2.namedWindow(self.title, cv2.WINDOW_NORMAL)
        except cv2.error:
            raise UserError("this OpenCV has no GUI support (pip's opencv-python-headless?); "
                            "run with --headless and --serve 127.0.0.1:8080 to watch in a browser")
        self._open = True
        return self

    def write(self, result, live_stats):
        import cv2

        cv2.imshow(self.title, annotated_frame(result, live_stats))
        key = cv2.waitKey(1) & 0xFF
        if key in (ord("q"), 27):
            self.wants_stop = True
        elif cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.wants_stop = True

    def close(self):
        if self._open:
            import cv2

            cv2.destroyWindow(self.title)
            cv2.waitKey(1)
            self._open = False


# --------------------------------------------------------------------------
# Console status (headless runs)
# --------------------------------------------------------------------------


class ConsoleOutput(Output):
    """A status line every ``interval_s`` seconds: frame, FPS, digits seen."""

    def __init__(self, interval_s=2.0, stream=None):
        self.interval_s = float(interval_s)
        self.stream = stream or sys.stderr
        self._last = 0.0

    def write(self, result, live_stats):
        now = time.time()
        if now - self._last < self.interval_s:
            return
        self._last = now
        digits = " ".join(detection_text(d) for d in result.detections) or "-"
        self.stream.write("frame %d: %s  (%.1f FPS)\n" % (result.index, digits, live_stats.get("fps", 0.0)))
        self.stream.flush()


# --------------------------------------------------------------------------
# MJPEG over HTTP
# --------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>edge_runtime live digits</title>
<style>body{font-family:sans-serif;background:#111;color:#eee;margin:1em}
img{max-width:100%%;border:1px solid #444}td{padding:0 1em 0 0}</style></head>
<body><h1>edge_runtime: live digits</h1>
<img id="stream" src="/stream.mjpg" alt="live stream">
<table>
<tr><td>frames processed</td><td id="frames">0</td></tr>
<tr><td>FPS</td><td id="fps">0</td></tr>
<tr><td>digits</td><td id="digits">-</td></tr>
<tr><td>stage ms (capture / preprocess / infer / output / total)</td><td id="stages">-</td></tr>
<tr><td>stream frames sent</td><td id="frames_sent">0</td></tr>
<tr><td>image size</td><td id="image_size">0x0</td></tr>
<tr><td>stats updates</td><td id="polls">0</td></tr>
</table>
<script>
var polls = 0;
function set(id, v) { document.getElementById(id).textContent = v; }
function poll() {
  fetch("/stats.json", {cache: "no-store"}).then(function (r) { return r.json(); }).then(function (s) {
    polls += 1;
    set("frames", s.frames); set("fps", s.fps.toFixed(1)); set("digits", s.digits || "-");
    set("stages", s.timing_ms ? [s.timing_ms.capture, s.timing_ms.preprocess, s.timing_ms.infer,
        s.timing_ms.output, s.timing_ms.total].map(function (x) { return (x || 0).toFixed(2); }).join(" / ") : "-");
    set("frames_sent", s.frames_sent);
    var img = document.getElementById("stream");
    set("image_size", img.naturalWidth + "x" + img.naturalHeight);
    set("polls", polls);
  }).catch(function () {});
}
poll();
setInterval(poll, %(interval_ms)d);
</script></body></html>
"""


class FrameHub(object):
    """The newest JPEG and stats of one server (no module-global state); clients wait on it."""

    def __init__(self):
        self.cond = threading.Condition()
        self.jpeg = None
        self.seq = 0
        self.closed = False
        self.stream_clients = 0
        self.frames_sent = 0
        self.stats_requests = 0
        self.stats = {"frames": 0, "fps": 0.0, "digits": "", "detections": [], "timing_ms": {}}

    def publish(self, jpeg, stats):
        with self.cond:
            if jpeg is not None:
                self.jpeg = jpeg
                self.seq += 1
            self.stats = stats
            self.cond.notify_all()

    def wait_frame(self, last_seq, timeout=1.0):
        with self.cond:
            if self.seq == last_seq and not self.closed:
                self.cond.wait(timeout)
            return self.seq, self.jpeg

    def snapshot(self):
        with self.cond:
            self.stats_requests += 1
            out = dict(self.stats)
            out.update({"stream_clients": self.stream_clients, "frames_sent": self.frames_sent,
                        "stats_requests": self.stats_requests})
            return out

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify_all()


class _MjpegHandler(BaseHTTPRequestHandler):
    server_version = "edge_runtime-mjpeg/1"
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        LOG.debug("%s %s", self.address_string(), fmt % args)

    def _send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        hub = self.server.hub
        try:
            if path in ("/", "/index.html"):
                body = PAGE % {"interval_ms": int(self.server.stats_interval_ms)}
                self._send(200, "text/html; charset=utf-8", body.encode("utf-8"))
            elif path == "/stats.json":
                self._send(200, "application/json", json.dumps(hub.snapshot()).encode("utf-8"))
            elif path == "/stream.mjpg":
                self._stream(hub)
            else:
                self._send(404, "text/plain", b"not found: try / or /stream.mjpg or /stats.json\n")
        except (socket.error, IOError):  # client went away (BrokenPipe, ConnectionReset)
            pass

    def _stream(self, hub):
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        with hub.cond:
            hub.stream_clients += 1
        try:
            last = 0
            while not hub.closed and not self.server.stopping:
                seq, jpeg = hub.wait_frame(last)
                if jpeg is None or seq == last:
                    continue
                last = seq
                with hub.cond:
                    hub.frames_sent += 1
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode("ascii") + b"\r\n\r\n" + jpeg + b"\r\n")
                self.wfile.flush()
        finally:
            with hub.cond:
                hub.stream_clients -= 1


class _ThreadingHTTPServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    stopping = False


class _ThreadingHTTPServer6(_ThreadingHTTPServer):
    address_family = socket.AF_INET6


def parse_host_port(text, default_host="127.0.0.1"):
    """'HOST:PORT', ':PORT' or 'PORT' -> (host, port). ValueError with a readable message."""
    text = str(text).strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    host = host.strip("[]") or default_host
    try:
        port = int(port)
    except ValueError:
        raise ValueError("expected HOST:PORT such as 127.0.0.1:8080, got %r" % text)
    if not 0 <= port <= 65535:
        raise ValueError("port must be 0..65535, got %d" % port)
    return host, port


class MjpegOutput(Output):
    """Serves / (page with stream and live stats), /stream.mjpg and /stats.json; each client its own thread."""

    def __init__(self, host="127.0.0.1", port=8080, quality=80, stats_interval_ms=500):
        self.host = host
        self.port = int(port)
        self.quality = int(quality)
        self.stats_interval_ms = stats_interval_ms
        self.hub = FrameHub()
        self._server = None
        self._thread = None

    @property
    def url(self):
        return "http://%s:%d/" % (self.host if ":" not in self.host else "[%s]" % self.host, self.port)

    def open(self):
        server_class = _ThreadingHTTPServer6 if ":" in self.host else _ThreadingHTTPServer
        try:
            server = server_class((self.host, self.port), _MjpegHandler)
        except (socket.error, OSError) as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    "port %d on %s is already in use (another edge_runtime or web server?); "
                    "choose another with --serve %s:%d, or stop the other program"
                    % (self.port, self.host, self.host, self.port + 1 if self.port < 65535 else 8081))
            raise UserError("cannot serve MJPEG on %s:%d: %s" % (self.host, self.port, exc.strerror or exc))
        server.hub = self.hub
        server.stats_interval_ms = self.stats_interval_ms
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="mjpeg", daemon=True)
        self._thread.start()
        if self.host in ("0.0.0.0", "::"):
            LOG.warning("MJPEG server listens on all interfaces (%s): anyone on the network can watch", self.host)
        LOG.info("MJPEG stream at %s", self.url)
        return self

    def write(self, result, live_stats):
        import cv2

        jpeg = None
        if self.hub.stream_clients > 0:
            ok, buf = cv2.imencode(".jpg", annotated_frame(result, live_stats),
                                   [int(cv2.IMWRITE_JPEG_QUALITY), self.quality])
            if ok:
                jpeg = buf.tobytes()
        stats = {
            "frame": int(result.index), "source": str(result.name),
            "frames": int(live_stats.get("frames", 0)) + 1, "fps": float(live_stats.get("fps", 0.0)),
            "digits": " ".join(detection_text(d) for d in result.detections),
            "detections": frame_record(result)["detections"],
            "timing_ms": dict((k, round(float(v), 3)) for k, v in display_timings(result, live_stats).items()),
        }
        self.hub.publish(jpeg, stats)

    def close(self):
        self.hub.close()
        if self._server is not None:
            self._server.stopping = True
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
