"""Fake Jetson root folders (L4T_ROOT) and a fake system python3 for the device scripts' tests."""

import os
import stat

RELEASE_LINES = {
    "32.7.1": "# R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: Sat Feb 19 17:05:08 UTC 2022",
    "32.7.4": "# R32 (release), REVISION: 7.4, GCID: 33514132, BOARD: t210ref, EABI: aarch64, DATE: Fri Jun  9 04:25:08 UTC 2023",
    "32.6.1": "# R32 (release), REVISION: 6.1, GCID: 27863751, BOARD: t210ref, EABI: aarch64, DATE: Mon Jul 26 19:20:30 UTC 2021",
    "32.5.1": "# R32 (release), REVISION: 5.1, GCID: 27362550, BOARD: t210ref, EABI: aarch64, DATE: Wed May 19 18:16:00 UTC 2021",
    "35.4.1": "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, DATE: Tue Aug  1 19:57:35 UTC 2023",
    "36.4.0": "# R36 (release), REVISION: 4.0, GCID: 37537400, BOARD: generic, EABI: aarch64, DATE: Fri Sep 13 04:36:44 UTC 2024",
    "38.2.0": "# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: Fri Aug 22 00:55:42 UTC 2025",
}


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
        line = RELEASE_LINES.get(release, release)
        write(os.path.join(folder, "etc", "nv_tegra_release"), line + "\n")
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
