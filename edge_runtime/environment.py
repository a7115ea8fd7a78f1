"""The environment block recorded with every benchmark result: facts collected, never changed.

Host, CPU, OS, Python, numpy, OpenCV (+ GStreamer), ONNX Runtime, TensorRT, pycuda and,
on a Jetson, the model, L4T release, ``nvpmodel -q`` power mode, whether clocks are
pinned (``jetson_clocks --show``, else sysfs), temperatures and power rails (tegrastats).

Every probe has a timeout and never raises: a fact that cannot be read is ``None``.
Nothing here changes the machine (no ``nvpmodel -m``, no ``jetson_clocks``).

Filesystem roots and the command runner are injectable so tests can fake a Jetson:

    collect_environment(root="/tmp/fake-jetson", runner=fake_runner)

Python 3.6 compatible: subprocess via Popen(stdout=PIPE, universal_newlines=True).
"""

import glob
import importlib
import logging
import os
import platform
import re
import signal
import socket
import subprocess
import sys

LOG = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 3.0
GPU_DEVFREQ_NAMES = ("gpu", "gv11b", "ga10b", "gp10b", "gm20b")


# --------------------------------------------------------------------------
# Small never-raising helpers
# --------------------------------------------------------------------------


def _path(root, path):
    return os.path.join(root or "/", path.lstrip("/"))


def read_text(root, path):
    """Contents of ``root``/``path`` stripped of whitespace and NULs, or None."""
    try:
        with open(_path(root, path), "rb") as handle:
            data = handle.read()
    except (IOError, OSError):
        return None
    text = data.decode("utf-8", "replace").replace("\x00", "").strip()
    return text or None


def read_int(root, path):
    text = read_text(root, path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def run_command(argv, timeout=DEFAULT_TIMEOUT_S, keep_partial=False):
    """stdout of ``argv`` or None (missing, failed, timed out). Never raises.

    ``keep_partial``: for commands that run until killed (tegrastats), a timeout is
    expected; return what was printed before it.
    """
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            universal_newlines=True, start_new_session=True,
        )
    except (OSError, ValueError):
        return None
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        try:
            out, _ = proc.communicate(timeout=1.0)
        except Exception:
            out = None
        return out if keep_partial and out else None
    except Exception:
        return None
    if proc.returncode != 0:
        return None
    return out


def _kill_group(proc):
    """Kill the command and anything it started (its own session), so pipes close."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (OSError, AttributeError):
        proc.kill()


def _version_of(module_name, attrs=("__version__",)):
    """The version string of an importable module, or None. Imports nothing heavy at module load."""
    try:
        module = importlib.import_module(module_name)
    except Exception:
        return None
    for attr in attrs:
        value = getattr(module, attr, None)
        if value:
            return str(value)
    return "unknown"


# --------------------------------------------------------------------------
# Probes (each returns plain JSON-able values and never raises)
# --------------------------------------------------------------------------


INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "asimddp")  # /proc/cpuinfo: x86 "flags", Arm "Features"


def int8_dot_flag(cpuinfo):
    """The first of INT8_DOT_FLAGS that ``cpuinfo`` (the text of /proc/cpuinfo) lists, or None."""
    words = set()
    for match in re.finditer(r"^(?:flags|Features)\s*:\s*(.*)$", cpuinfo or "", re.MULTILINE):
        words.update(match.group(1).split())
    for flag in INT8_DOT_FLAGS:
        if flag in words:
            return flag
    return None


def cpu_int8_dot(root="/"):
    """This CPU's int8 dot-product instruction set (``int8_dot_flag``), None where it has none or
    /proc/cpuinfo cannot be read (not Linux): where ONNX Runtime's INT8 models are measured faster."""
    return int8_dot_flag(read_text(root, "/proc/cpuinfo"))


def cpu_facts(root="/"):
    model = None
    cpuinfo = read_text(root, "/proc/cpuinfo") or ""
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        match = re.search(r"^%s\s*:\s*(.+)$" % re.escape(key), cpuinfo, re.MULTILINE)
        if match:
            model = match.group(1).strip()
            break
    if not model and "CPU part" in cpuinfo:
        parts = sorted(set(re.findall(r"^CPU part\s*:\s*(\S+)", cpuinfo, re.MULTILINE)))
        model = "ARM CPU part " + ",".join(parts)  # 0xd07 = Cortex-A57 (Nano), 0xd42 = A78AE (Orin)
    if not model:
        model = platform.processor() or None
    cores = None
    try:
        cores = len(os.sched_getaffinity(0)) if root in (None, "/") else None
    except (AttributeError, OSError):
        cores = None
    if cores is None and cpuinfo:
        cores = len(re.findall(r"^processor\s*:", cpuinfo, re.MULTILINE)) or None
    if cores is None and root in (None, "/"):
        cores = os.cpu_count()
    return {"model": model, "cores": cores, "machine": platform.machine() or None,
            "int8_dot": int8_dot_flag(cpuinfo)}


def os_facts(root="/"):
    pretty = None
    text = read_text(root, "/etc/os-release") or ""
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', text, re.MULTILINE)
    if match:
        pretty = match.group(1)
    return {"name": pretty, "platform": platform.platform(), "kernel": platform.release()}


def opencv_facts():
    try:
        import cv2
    except Exception:
        return {"version": None, "gstreamer": None, "cuda": None}
    gstreamer = cuda = None
    try:
        info = cv2.getBuildInformation()
        match = re.search(r"^\s*GStreamer:\s*(\S+)", info, re.MULTILINE)
        if match:
            gstreamer = match.group(1).upper().startswith("YES")
        match = re.search(r"^\s*NVIDIA CUDA:\s*(\S+)", info, re.MULTILINE)
        cuda = bool(match and match.group(1).upper().startswith("YES"))
    except Exception:
        pass
    return {"version": getattr(cv2, "__version__", None), "gstreamer": gstreamer, "cuda": cuda}


def onnxruntime_facts():
    try:
        import onnxruntime as ort
    except Exception:
        return {"version": None, "providers": None}
    try:
        providers = list(ort.get_available_providers())
    except Exception:
        providers = None
    return {"version": getattr(ort, "__version__", None), "providers": providers}


def library_versions():
    """Versions of the Python libraries the runtime can use (None = not importable)."""
    return {
        "numpy": _version_of("numpy"),
        "opencv": opencv_facts(),
        "onnxruntime": onnxruntime_facts(),
        # import tensorrt creates no CUDA context; `pycuda` (not pycuda.autoinit) neither
        "tensorrt": _version_of("tensorrt"),
        "pycuda": _version_of("pycuda", ("VERSION_TEXT", "__version__")),
    }


def parse_l4t_release(text):
    """'# R32 (release), REVISION: 7.1, GCID: ...' -> '32.7.1' (None if unrecognised)."""
    if not text:
        return None
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    if not match:
        return None
    return "%s.%s" % (match.group(1), match.group(2).rstrip("."))


def parse_nvpmodel(text):
    """`nvpmodel -q` output -> {"name": "MAXN", "id": 0} (None if unrecognised)."""
    if not text:
        return None
    name = re.search(r"NV Power Mode:\s*(\S+)", text)
    ident = re.search(r"^\s*(\d+)\s*$", text, re.MULTILINE)
    if not name and not ident:
        return None
    return {"name": name.group(1) if name else None, "id": int(ident.group(1)) if ident else None}


def parse_jetson_clocks_show(text):
    """`jetson_clocks --show` -> {"pinned": bool, "source": ...}: pinned when every CPU and
    the GPU report MinFreq == MaxFreq (what `jetson_clocks` sets)."""
    if not text:
        return None
    pairs = re.findall(r"^(cpu\d+|GPU)\b.*?MinFreq=(\d+)\s+MaxFreq=(\d+)", text, re.MULTILINE)
    if not pairs:
        return None
    pinned = all(lo == hi for _, lo, hi in pairs)
    return {"pinned": pinned, "source": "jetson_clocks --show",
            "unpinned": [name for name, lo, hi in pairs if lo != hi]}


def clocks_from_sysfs(root="/"):
    """Pinned clocks from sysfs: every online CPU's scaling_min_freq == scaling_max_freq and the
    GPU devfreq min_freq == max_freq. None when there is nothing to read."""
    checked, unpinned = [], []
    for cpu_dir in sorted(glob.glob(_path(root, "/sys/devices/system/cpu/cpu[0-9]*"))):
        lo = read_int("/", os.path.join(cpu_dir, "cpufreq/scaling_min_freq"))
        hi = read_int("/", os.path.join(cpu_dir, "cpufreq/scaling_max_freq"))
        if lo is None or hi is None:
            continue
        checked.append(os.path.basename(cpu_dir))
        if lo != hi:
            unpinned.append(os.path.basename(cpu_dir))
    gpu = None
    for dev in sorted(glob.glob(_path(root, "/sys/class/devfreq/*"))):
        name = os.path.basename(dev)
        if not any(key in name for key in GPU_DEVFREQ_NAMES):
            continue
        lo = read_int("/", os.path.join(dev, "min_freq"))
        hi = read_int("/", os.path.join(dev, "max_freq"))
        cur = read_int("/", os.path.join(dev, "cur_freq"))
        if lo is None or hi is None:
            continue
        gpu = {"device": name, "min_hz": lo, "max_hz": hi, "cur_hz": cur}
        checked.append("GPU")
        if lo != hi:
            unpinned.append("GPU")
        break
    if not checked:
        return None
    return {"pinned": not unpinned, "source": "sysfs", "unpinned": unpinned, "gpu": gpu}


def temperatures(root="/"):
    """{zone type: degrees C} from /sys/class/thermal (None if there are no zones)."""
    temps = {}
    for zone in sorted(glob.glob(_path(root, "/sys/class/thermal/thermal_zone*"))):
        milli = read_int("/", os.path.join(zone, "temp"))
        if milli is None:
            continue
        kind = read_text("/", os.path.join(zone, "type")) or os.path.basename(zone)
        temps[kind] = round(milli / 1000.0, 1)
    return temps or None


def parse_tegrastats(text):
    """The last tegrastats line -> {"rails_mw": {rail: mW now}, "line": raw}. Handles the
    Nano ('POM_5V_IN 2816/2816') and Orin ('VDD_IN 4567mW/4567mW') formats."""
    if not text:
        return None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1]
    rails = {}
    for name, now in re.findall(r"\b([A-Z][A-Z0-9_]*)\s+(\d+)(?:mW)?/(?:\d+)(?:mW)?", line):
        if name in ("RAM", "SWAP", "LFB", "IRAM"):
            continue
        rails[name] = int(now)
    return {"rails_mw": rails or None, "line": line}


def jetson_facts(root="/", runner=run_command, timeout=DEFAULT_TIMEOUT_S):
    """Jetson-only facts, or None on a machine that is not a Jetson."""
    model = read_text(root, "/proc/device-tree/model")
    release_text = read_text(root, "/etc/nv_tegra_release")
    if not release_text and not (model and ("jetson" in model.lower() or "nvidia" in model.lower())):
        return None
    clocks = parse_jetson_clocks_show(runner(["jetson_clocks", "--show"], timeout=timeout))
    if clocks is None:
        clocks = clocks_from_sysfs(root)
    power = parse_tegrastats(runner(["tegrastats", "--interval", "200"], timeout=1.0, keep_partial=True))
    return {
        "model": model,
        "l4t": parse_l4t_release(release_text),
        "l4t_release_line": release_text.splitlines()[0] if release_text else None,
        "power_mode": parse_nvpmodel(runner(["nvpmodel", "-q"], timeout=timeout)),
        "clocks": clocks,
        "power": power,
    }


def collect_environment(root="/", runner=None, timeout=DEFAULT_TIMEOUT_S, libraries=True):
    """The environment block (a JSON-able dict). Never raises; never changes the machine."""
    runner = runner or run_command
    env = {"host": None, "cpu": None, "os": None, "python": None, "load_average": None}
    probes = [
        ("host", lambda: socket.gethostname()),
        ("cpu", lambda: cpu_facts(root)),
        ("os", lambda: os_facts(root)),
        ("python", lambda: {"version": platform.python_version(), "executable": sys.executable}),
    ]
    if libraries:
        probes.append(("libraries", library_versions))
    probes += [
        ("load_average", lambda: load_average(root)),
        ("jetson", lambda: jetson_facts(root, runner, timeout)),
        ("temperature_c", lambda: temperatures(root)),
    ]
    for key, probe in probes:
        try:
            env[key] = probe()
        except Exception as exc:  # a probe must never break a benchmark
            LOG.debug("environment probe %s failed: %s", key, exc)
            env[key] = None
    return env


def load_average(root="/"):
    """[1, 5, 15 minute] load averages from /proc/loadavg (None if unreadable): other work on the
    machine while benchmarking shows up here."""
    text = read_text(root, "/proc/loadavg")
    try:
        return [float(v) for v in text.split()[:3]] if text else None
    except ValueError:
        return None


def thermal_snapshot(root="/", runner=None):
    """Load, temperatures and (on a Jetson) power rails now: record after a benchmark to see
    contention, heating and throttling."""
    runner = runner or run_command
    snap = {"load_average": None, "temperature_c": None, "power": None}
    try:
        snap["load_average"] = load_average(root)
        snap["temperature_c"] = temperatures(root)
        if read_text(root, "/etc/nv_tegra_release") or read_text(root, "/proc/device-tree/model"):
            snap["power"] = parse_tegrastats(runner(["tegrastats", "--interval", "200"], timeout=1.0,
                                                    keep_partial=True))
    except Exception as exc:
        LOG.debug("thermal snapshot failed: %s", exc)
    return snap


def summary_lines(env):
    """A few human-readable lines for reports and the `bench` Markdown."""
    libs = env.get("libraries") or {}
    cv = libs.get("opencv") or {}
    ort = libs.get("onnxruntime") or {}
    cpu = env.get("cpu") or {}
    load = env.get("load_average")
    lines = [
        "host %s, %s, %s cores, %s%s" % (env.get("host"), cpu.get("model"), cpu.get("cores"),
                                         (env.get("os") or {}).get("name"),
                                         ", load average %.2f" % load[0] if load else ""),
        "Python %s, numpy %s, OpenCV %s (GStreamer %s), ONNX Runtime %s, TensorRT %s, pycuda %s" % (
            (env.get("python") or {}).get("version"), libs.get("numpy"), cv.get("version"),
            _yes_no(cv.get("gstreamer")), ort.get("version"), libs.get("tensorrt"), libs.get("pycuda")),
    ]
    jetson = env.get("jetson")
    if jetson:
        mode = jetson.get("power_mode") or {}
        clocks = jetson.get("clocks") or {}
        lines.append("%s, L4T %s, power mode %s (%s), clocks pinned: %s" % (
            jetson.get("model"), jetson.get("l4t"), mode.get("name"), mode.get("id"),
            _yes_no(clocks.get("pinned"))))
    return lines


def _yes_no(value):
    return "unknown" if value is None else ("yes" if value else "no")
