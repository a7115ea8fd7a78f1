"""scripts/docker_run_jetson.sh --dry-run on fake L4T roots: tag mapping and the docker command.

No docker engine runs here; the Dockerfiles themselves are checked by hadolint (test_lint.py)
and for the build arguments this script passes.
"""

import os
import re
import shlex
import subprocess

import pytest

from tests.scripts.conftest import ROOT
from tests.scripts.fakeroot import make_root

RUN = os.path.join(ROOT, "scripts", "docker_run_jetson.sh")


def docker_run(root, *args, cwd=ROOT):
    env = dict(os.environ, L4T_ROOT=str(root))
    proc = subprocess.run(["bash", RUN, "--dry-run"] + list(args), env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=30)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def bundle(tmp_path):
    folder = tmp_path / "artifacts" / "cnn"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    return str(folder)


def commands(out):
    return [shlex.split(line) for line in out.splitlines() if line.startswith("docker ")]


@pytest.mark.parametrize("release, base, tag", [
    ("32.7.1", "nvcr.io/nvidia/l4t-base", "r32.7.1"),
    ("32.7.4", "nvcr.io/nvidia/l4t-base", "r32.7.1"),  # every 4.6.x maps to the r32.7.1 image
    ("32.6.1", "nvcr.io/nvidia/l4t-base", "r32.6.1"),
    ("35.4.1", "nvcr.io/nvidia/l4t-jetpack", "r35.4.1"),
    ("36.4.0", "nvcr.io/nvidia/l4t-jetpack", "r36.4.0"),
])
def test_release_maps_to_matching_image(tmp_path, bundle, release, base, tag):
    root = make_root(tmp_path / "root", release, videos=(0, 2))
    code, out, err = docker_run(root, "--model", bundle, "--build", "--port", "8080", "--", "--headless")
    assert code == 0, err
    build, run = commands(out)
    assert build[:2] == ["docker", "build"]
    assert "L4T_BASE=" + base in build and "L4T_TAG=" + tag in build
    assert ("OPENCV_PKG=" in build) == base.endswith("l4t-jetpack")  # JetPack 5/6 images ship OpenCV
    assert build[build.index("-t") + 1] == "nano-digits-jetson:" + tag
    assert build[build.index("-f") + 1].endswith("docker/Dockerfile.jetson")
    assert run[:4] == ["docker", "run", "--rm", "--runtime"] and run[4] == "nvidia"
    devices = [run[i + 1] for i, word in enumerate(run) if word == "--device"]
    assert devices == ["/dev/video0", "/dev/video2"]
    volumes = [run[i + 1] for i, word in enumerate(run) if word == "-v"]
    assert "/tmp/argus_socket:/tmp/argus_socket" in volumes
    assert os.path.realpath(bundle) + ":/app/model:ro" in volumes
    image_at = run.index("nano-digits-jetson:" + tag)
    assert run[image_at + 1:] == ["--model", "/app/model", "--source", "csi://0", "--serve", "127.0.0.1:8080",
                                  "--headless"]


@pytest.mark.parametrize("release, words", [
    ("32.5.1", "JetPack 4.5 or older"),
    ("38.2.0", "is not supported"),
    (None, "not a Jetson"),
])
def test_unsupported_release_is_refused(tmp_path, bundle, release, words):
    root = make_root(tmp_path / "root", release)
    code, out, err = docker_run(root, "--model", bundle)
    assert code == 1 and words in err and not commands(out)


def test_missing_bundle_is_refused(tmp_path):
    root = make_root(tmp_path / "root", "32.7.1")
    code, out, err = docker_run(root, "--model", str(tmp_path / "none"))
    assert code == 1 and "no bundle at" in err and not commands(out)


def test_dockerfile_jetson_args_match_the_script():
    with open(os.path.join(ROOT, "docker", "Dockerfile.jetson")) as handle:
        text = handle.read()
    assert re.search(r"^ARG L4T_BASE=nvcr.io/nvidia/l4t-base$", text, re.M)
    assert re.search(r"^ARG L4T_TAG=r32.7.1$", text, re.M)
    assert "FROM ${L4T_BASE}:${L4T_TAG}" in text
    assert "requirements/jetson.txt" in text and "pip==21.3.1" in text
