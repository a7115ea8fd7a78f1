"""scripts/setup_jetson.sh on fake L4T roots in --dry-run mode: detection, plan, idempotence."""

import os
import shutil
import subprocess

import pytest

from tests.scripts.conftest import ROOT
from tests.scripts.fakeroot import fake_python, make_root

SETUP = os.path.join(ROOT, "scripts", "setup_jetson.sh")


def setup(root, python, *args):
    env = dict(os.environ, L4T_ROOT=str(root), SETUP_PYTHON=python)
    proc = subprocess.run(["bash", SETUP, "--dry-run"] + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def planned(out):
    return [line.split("would run: ", 1)[1] for line in out.splitlines() if "would run: " in line]


def test_jetpack_461_nano_plan(tmp_path):
    root = make_root(tmp_path / "root", "32.7.1", installed=("python3-pip", "build-essential"))
    venv = str(tmp_path / "venv")
    code, out, err = setup(root, fake_python(tmp_path), "--venv", venv, "--no-swap")
    assert code == 0, err
    assert "L4T R32.7.1 = JetPack 4.6.1" in out and "TensorRT Python module: 8.2.1" in out
    assert "GStreamer YES" in out
    plan = planned(out)
    install = [c for c in plan if "apt-get install" in c]
    assert len(install) == 1
    assert "python3-venv" in install[0] and "python3-dev" in install[0]
    assert "python3-pip " not in install[0] + " " and "build-essential" not in install[0]  # already there
    assert any(c.endswith("-m venv --system-site-packages " + venv) for c in plan)
    assert any(c.endswith("-m pip install --upgrade pip<22 wheel") for c in plan)  # Python 3.6: pip below 22
    numpy_first, pycuda = [c for c in plan if "requirements/jetson.txt" in c]
    assert numpy_first.endswith("-m pip install -c %s/requirements/jetson.txt numpy" % ROOT)
    assert pycuda.startswith("env PATH=/usr/local/cuda/bin:") and "CUDA_ROOT=/usr/local/cuda" in pycuda
    assert pycuda.endswith("-m pip install -r %s/requirements/jetson.txt" % ROOT)
    assert plan[-1].endswith("-m edge_runtime info")
    assert not [c for c in plan if "swapfile" in c]


def test_missing_tensorrt_and_gstreamer_are_reported(tmp_path):
    root = make_root(tmp_path / "root", "32.6.1")
    code, out, err = setup(root, fake_python(tmp_path, tensorrt=None, gstreamer="NO"), "--venv",
                           str(tmp_path / "v"), "--no-swap")
    assert code == 0, err
    assert "JetPack 4.6 " in out and "TensorRT 8.0.1" in out
    assert "python3-libnvinfer" in [c for c in planned(out) if "apt-get install" in c][0]
    assert "no GStreamer" in out


def test_rerun_with_ready_venv_changes_nothing(tmp_path):
    root = make_root(tmp_path / "root", "32.7.4", installed=("python3-pip", "python3-venv", "python3-dev",
                                                               "build-essential"), swap_kb=8 << 20)
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = true\nversion = 3.6.9\n")
    vpy = venv / "bin" / "python3"
    vpy.write_text("#!/bin/sh\ncase \"$*\" in *__version__*) echo 1.19.4 ;; *) exit 0 ;; esac\n")
    vpy.chmod(0o755)
    code, out, err = setup(root, fake_python(tmp_path), "--venv", str(venv))
    assert code == 0, err
    assert "already installed" in out and "already exists (system site packages: yes)" in out
    assert "numpy 1.19.4 and pycuda already installed" in out
    assert "swap: 8192 MiB is enough" in out
    assert planned(out) == [str(vpy) + " -m edge_runtime info"]  # only the final report


def test_swap_is_offered_not_forced(tmp_path):
    root = make_root(tmp_path / "root", "32.7.1", swap_kb=2 << 20)
    code, out, err = setup(root, fake_python(tmp_path), "--venv", str(tmp_path / "v"))
    assert code == 0 and "To add 4 GB" in out and not [c for c in planned(out) if "swapfile" in c]
    code, out, err = setup(root, fake_python(tmp_path), "--venv", str(tmp_path / "v"), "--swap", "--swap-size", "6")
    swap = [c for c in planned(out) if "swapfile" in c]
    assert code == 0 and any("fallocate -l 6G /var/swapfile-nano-digits" in c for c in swap)
    assert any(c.endswith("swapon /var/swapfile-nano-digits") for c in swap)


def test_jetpack6_uses_current_pip(tmp_path):
    root = make_root(tmp_path / "root", "36.4.0")
    code, out, err = setup(root, fake_python(tmp_path, version="3.10", tensorrt="10.3.0"), "--venv",
                           str(tmp_path / "v"), "--no-swap")
    assert code == 0, err
    assert "JetPack 6.x" in out and "TensorRT Python module: 10.3.0" in out
    assert any(c.endswith("-m pip install --upgrade pip wheel") for c in planned(out))


@pytest.mark.parametrize("release, words", [
    ("32.5.1", "JetPack 4.5 or older"),
    ("38.2.0", "L4T R38.2.0 is not supported"),
    ("garbage line", "cannot parse"),
    (None, "not a Jetson"),
])
def test_unsupported_or_missing_release_is_refused(tmp_path, release, words):
    root = make_root(tmp_path / "root", release)
    code, out, err = setup(root, fake_python(tmp_path))
    assert code == 1 and words in err and "setup_jetson.sh: error:" in err
    assert not planned(out)


def test_missing_nvcc_stops_before_pycuda(tmp_path):
    root = make_root(tmp_path / "root", "32.7.1", nvcc=False)
    code, out, err = setup(root, fake_python(tmp_path), "--venv", str(tmp_path / "v"), "--no-swap")
    assert code == 1 and "nvcc not found" in err
    assert not [c for c in planned(out) if "requirements/jetson.txt" in c]


def test_default_venv_sits_next_to_the_deployed_releases(tmp_path):
    release = tmp_path / "nano-digits" / "releases" / "20261123T101500Z-1"
    (release / "scripts").mkdir(parents=True)
    (release / "requirements").mkdir()
    for name in ("setup_jetson.sh", "l4t_release.sh"):
        shutil.copy(os.path.join(ROOT, "scripts", name), str(release / "scripts" / name))
    shutil.copy(os.path.join(ROOT, "requirements", "jetson.txt"), str(release / "requirements"))
    os.symlink("releases/20261123T101500Z-1", str(tmp_path / "nano-digits" / "current"))
    root = make_root(tmp_path / "root", "32.7.1")
    script = str(tmp_path / "nano-digits" / "current" / "scripts" / "setup_jetson.sh")  # as the README runs it
    env = dict(os.environ, L4T_ROOT=root, SETUP_PYTHON=fake_python(tmp_path))
    proc = subprocess.run(["bash", script, "--dry-run", "--no-swap"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    venv = str(tmp_path / "nano-digits" / "venv")
    assert any(c.endswith("-m venv --system-site-packages " + venv) for c in planned(proc.stdout))
    assert any(str(release / "requirements" / "jetson.txt") in c for c in planned(proc.stdout))


def test_failed_step_names_the_command_and_stops(tmp_path):
    # every apt package present and TensorRT found, so this real (not --dry-run) run never calls apt-get;
    # the fake python cannot make a venv, like a python3 without ensurepip
    root = make_root(tmp_path / "root", "32.7.1",
                     installed=("python3-pip", "python3-venv", "python3-dev", "build-essential"))
    env = dict(os.environ, L4T_ROOT=root, SETUP_PYTHON=fake_python(tmp_path))
    proc = subprocess.run(["bash", SETUP, "--venv", str(tmp_path / "venv"), "--no-swap"], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert proc.returncode == 1
    assert "-m venv --system-site-packages" in proc.stderr and "failed (exit 3)" in proc.stderr
    assert "run setup_jetson.sh again" in proc.stderr
    assert "pip install" not in proc.stdout  # stopped at the failing step


def test_help():
    proc = subprocess.run(["bash", SETUP, "--help"], stdout=subprocess.PIPE, universal_newlines=True)
    assert proc.returncode == 0 and "examples:" in proc.stdout and "--dry-run" in proc.stdout
