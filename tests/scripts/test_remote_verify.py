"""scripts/remote_verify.py: the checksum helper deploy.sh runs here and on the device (Python 3.6)."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.scripts.conftest import ROOT

HELPER = os.path.join(ROOT, "scripts", "remote_verify.py")


def helper(python, *args, cwd=None):
    proc = subprocess.run([python, HELPER] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60, cwd=cwd)
    return proc.returncode, proc.stdout, proc.stderr


def python36():
    """A real Python 3.6 interpreter (the Nano's version) if this machine has one."""
    pyenv = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3")))
    candidates = [shutil.which("python3.6")] + pyenv
    for path in candidates:
        if path and subprocess.call([path, "-c", "import sys; assert sys.version_info[:2] == (3, 6)"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
            return path
    pytest.skip("no Python 3.6 interpreter here (the device side is checked by vermin instead)")


@pytest.fixture
def release(tmp_path, deploy_bundle):
    """A release tree as deploy.sh stages it: runtime + bundle + SHA256SUMS."""
    stage = tmp_path / "release"
    code = subprocess.call(["bash", os.path.join(ROOT, "scripts", "deploy.sh"), "--stage-only", str(stage),
                            "--model", deploy_bundle, "--local-python", sys.executable],
                           stdout=subprocess.DEVNULL)
    assert code == 0
    return str(stage)


def test_files_lists_manifest_and_listed_files(deploy_bundle):
    code, out, err = helper(sys.executable, "files", deploy_bundle)
    assert code == 0, err
    assert out.split() == ["manifest.json", "model.onnx"]


def test_sums_match_sha256sum_format(release):
    with open(os.path.join(release, "SHA256SUMS")) as handle:
        lines = handle.read().splitlines()
    names = [line.split("  ", 1)[1] for line in lines]
    assert "artifacts/tiny/model.onnx" in names and "edge_runtime/manifest.py" in names
    assert not [n for n in names if "__pycache__" in n or n == "SHA256SUMS"]
    if shutil.which("sha256sum"):  # a device without Python could check it with coreutils
        assert subprocess.call(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=release) == 0


@pytest.mark.parametrize("python", ["current", "3.6"])
def test_verify_release_and_detect_damage(release, python):
    exe = sys.executable if python == "current" else python36()
    code, out, err = helper(exe, "verify", release)
    assert code == 0, err
    with open(os.path.join(release, ".deploy", "verified.json")) as handle:
        marker = json.load(handle)
    assert marker["python"].startswith("3.6" if python == "3.6" else "3.")
    assert "sha256 verified for %d files" % marker["files_checked"] in out
    with open(os.path.join(release, "edge_runtime", "errors.py"), "a") as handle:
        handle.write("# changed\n")
    code, out, err = helper(exe, "verify", release)
    assert code == 1 and "sha256 mismatch" in err and "edge_runtime/errors.py" in err


def test_missing_sums_and_bundle_errors(tmp_path, release):
    os.unlink(os.path.join(release, "SHA256SUMS"))
    code, out, err = helper(sys.executable, "verify", release)
    assert code == 1 and "SHA256SUMS is missing" in err
    code, out, err = helper(sys.executable, "files", str(tmp_path / "nothing"))
    assert code == 1 and "manifest.json is missing" in err
    code, out, err = helper(sys.executable)
    assert code == 2 and "usage" in out
