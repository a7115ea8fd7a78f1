"""Fake Jetson root folders (L4T_ROOT) and a fake system python3 for the device scripts' tests."""

import os
import stat

# release -> (GCID, BOARD) as in the first line of a real /etc/nv_tegra_release
RELEASES = {
    "32.7.1": ("29818004", "t210ref"),
    "32.7.4": ("33514132", "t210ref"),
    "32.6.1": ("27863751", "t210ref"),
    "32.5.1": ("27362550", "t210ref"),
    "35.4.1": ("33958178", "t186ref"),
    "36.4.0": ("37537400", "generic"),
    "38.2.0": ("41844464", "generic"),
}


def release_line(release):
    if release not in RELEASES:
        return release  # a malformed line, for parser tests
    major, minor, patch = release.split(".")
    gcid, board = RELEASES[release]
    template = "# R%s (release), REVISION: %s.%s, GCID: %s, BOARD: %s, EABI: aarch64, DATE: Sat Feb 19 2022"
    return template % (major, minor, patch, gcid, board)


def write(path, text, mode=None):
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        os.makedirs(folder)
    with open(path, "w") as handle:
        handle.write(text)
    if mode is not None:
        os.chmod(path, mode)


def make_root(folder, release="32.7.1", installed=("python3-pip",), swap_kb=0, nvcc=True, videos=(0,)):
    """A minimal L4T root: etc/nv_tegra_release, dpkg status, /proc/meminfo, CUDA, /dev/video*."""
    folder = str(folder)
    if release is not None:
        write(os.path.join(folder, "etc", "nv_tegra_release"), release_line(release) + "\n")
    status = "".join("Package: %s\nStatus: install ok installed\n\n" % p for p in installed)
    status += "Package: python3-venv\nStatus: deinstall ok config-files\n\n" if "python3-venv" not in installed else ""
    write(os.path.join(folder, "var", "lib", "dpkg", "status"), status)
    write(os.path.join(folder, "proc", "meminfo"), "MemTotal: 4051060 kB\nSwapTotal: %d kB\n" % swap_kb)
    if nvcc:
        write(os.path.join(folder, "usr", "local", "cuda", "bin", "nvcc"), "#!/bin/sh\n", 0o755)
    for index in videos:
        write(os.path.join(folder, "dev", "video%d" % index), "")
    return folder


def fake_python(folder, version="3.6", tensorrt="8.2.1", gstreamer="YES"):
    """An executable that answers setup_jetson.sh's probes like JetPack's python3 would."""
    path = os.path.join(str(folder), "fake-python3")
    trt = 'echo %s' % tensorrt if tensorrt else "exit 1"
    gst = 'echo %s' % gstreamer if gstreamer else "exit 1"
    write(path, """#!/bin/sh
case "$*" in
  *version_info*) echo %s ;;
  *"import tensorrt"*) %s ;;
  *cv2*) %s ;;
  *) echo "fake-python3: unexpected call: $*" >&2; exit 3 ;;
esac
""" % (version, trt, gst))
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR)
    return path
