"""The MJPEG page in a real browser: Debian's headless Chromium shows frames and live stats."""

import os
import re
import shutil
import subprocess
import tempfile
import threading

import pytest

from edge_runtime import outputs
from edge_runtime.pipeline import run_pipeline
from edge_runtime.sources import MemorySource
from tests.edge_runtime.test_pipeline import GridDetector, frames_with_levels

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class Paced(outputs.Output):
    """Keeps the pipeline at about 50 FPS so the test does not burn the CPU."""

    def write(self, result, live_stats):
        threading.Event().wait(0.02)


def _cell(dom, cell_id):
    match = re.search(r'<td id="%s">([^<]*)</td>' % cell_id, dom)
    assert match, "no #%s in the page:\n%s" % (cell_id, dom[:2000])
    return match.group(1)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium; .ci/run does)")
def test_chromium_sees_frames_and_stats(tiny_bundle):
    server = outputs.MjpegOutput("127.0.0.1", 0, stats_interval_ms=200).open()
    stop = threading.Event()
    src = MemorySource(frames_with_levels([60, 120, 180], shape=(120, 200, 3)), loops=None, is_live=True)
    worker = threading.Thread(target=run_pipeline, args=(src, "onnxruntime", tiny_bundle),
                              kwargs={"outputs": [server, Paced()], "detector": GridDetector(2), "stop_event": stop})
    worker.start()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        proc = subprocess.run(
            [CHROMIUM] + FLAGS + ["--user-data-dir=" + profile, "--virtual-time-budget=3000", "--dump-dom", server.url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=90)
    finally:
        stop.set()
        worker.join(10)
        server.close()
        shutil.rmtree(profile, ignore_errors=True)
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert int(_cell(dom, "frames")) > 0  # stats.json arrived and JS wrote it into the DOM
    assert int(_cell(dom, "polls")) >= 2
    assert float(_cell(dom, "fps")) > 0
    assert _cell(dom, "digits") == "? ?"  # the tiny model is unsure of everything: shown as ?
    assert int(_cell(dom, "frames_sent")) > 0  # MJPEG parts went to the browser's <img>
    assert _cell(dom, "image_size") == "200x120"  # and it decoded them
    assert server.hub.frames_sent > 0 and server.hub.stats_requests >= 2
