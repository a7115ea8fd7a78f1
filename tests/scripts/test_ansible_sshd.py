"""ansible/deploy.yml against the throw-away sshd (conftest.py): three "devices" in one run.

When this machine has Python 3.6 (pyenv), the Ansible modules run under it, as under JetPack 4.6's
python3: ansible-core 2.17+ would fail there, 2.16 must not. nano-a deploys cleanly; nano-b's staged
copy is tampered with (fault-injection hook) and must be refused with its staging folder removed;
nano-c is unreachable. The run reports each host.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.scripts.conftest import ROOT, free_port
from tests.scripts.fakeroot import release_line

PLAYBOOK = os.path.join(ROOT, "ansible", "deploy.yml")


def ansible_playbook():
    path = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    if not path:
        pytest.skip("ansible-core not installed (pip install -r ansible/requirements.txt; make venv does)")
    return path


def module_python():
    """Python 3.6 (JetPack 4.6's) runs the Ansible modules when this machine has it, as on a Nano."""
    for path in sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.6*/bin/python3"))) + [
            shutil.which("python3.6") or ""]:
        if path and os.access(path, os.X_OK):
            return path
    return sys.executable


INVENTORY = """[nanos]
nano-a ansible_host=127.0.0.1 nano_dir={tmp}/a nano_l4t_file={tmp}/r32.7.1
nano-b ansible_host=127.0.0.1 nano_dir={tmp}/b nano_after_copy_hook="printf x >> artifacts/tiny/model.onnx"
nano-c ansible_host=127.0.0.1 ansible_port={dead_port} nano_dir={tmp}/c
nano-d ansible_host=127.0.0.1 nano_dir={tmp}/d nano_l4t_file={tmp}/r32.5.1

[nanos:vars]
ansible_port={port}
ansible_user={user}
ansible_ssh_private_key_file={key}
ansible_ssh_common_args=-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking=accept-new
ansible_python_interpreter={module_python}
nano_python={python}
"""


@pytest.fixture(scope="module")
def fleet_run(device, deploy_bundle, tmp_path_factory):
    playbook = ansible_playbook()
    tmp = str(tmp_path_factory.mktemp("fleet"))
    inventory = os.path.join(tmp, "inventory.ini")
    for release in ("32.7.1", "32.5.1"):
        with open(os.path.join(tmp, "r" + release), "w") as handle:
            handle.write(release_line(release) + "\n")
    with open(inventory, "w") as handle:
        handle.write(INVENTORY.format(tmp=tmp, dead_port=free_port(), port=device.port, user=device.user,
                                      key=device.key, known_hosts=device.known_hosts, python=device.python,
                                      module_python=module_python()))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible", "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_REMOTE_TMP=os.path.join(tmp, "remote-tmp"), ANSIBLE_LOCAL_TEMP=os.path.join(tmp, "local-tmp"),
               ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(tmp, "cp"), ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([playbook, "-i", inventory, PLAYBOOK, "-e", "model=" + deploy_bundle], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=240)
    with open(os.path.join(tmp, "ansible.log"), "w") as handle:
        handle.write(proc.stdout)  # for debugging a failure
    return tmp, proc.returncode, " ".join(proc.stdout.split())  # the yaml callback wraps long lines


def recap(out, host):
    """{ok, changed, unreachable, failed, ...} from the PLAY RECAP line of `host`."""
    match = re.search(re.escape(host) + r" : ((?:[a-z]+=\d+ ?)+)", out.split("PLAY RECAP")[-1])
    assert match, "no recap line for %s in: %s" % (host, out[-3000:])
    return dict(part.split("=") for part in match.group(1).split())


def test_good_host_is_installed_and_verified(fleet_run, deploy_bundle):
    tmp, code, out = fleet_run
    assert code != 0, out  # the run as a whole reports the failed and unreachable hosts
    current = os.path.join(tmp, "a", "current")
    assert os.readlink(current).startswith("releases/") and not os.readlink(current).endswith(".partial")
    with open(os.path.join(current, "artifacts", "tiny", "model.onnx"), "rb") as a, \
            open(os.path.join(deploy_bundle, "model.onnx"), "rb") as b:
        assert a.read() == b.read()
    with open(os.path.join(current, ".deploy", "verified.json")) as handle:
        marker = json.load(handle)
    with open(os.path.join(current, "SHA256SUMS")) as handle:
        assert marker["files_checked"] == len([line for line in handle if line.strip()])
    assert "nano-a: OK current -> releases/" in out and "L4T R32.7.1 = JetPack 4.6.1" in out
    assert "sha256 verified for %d files" % marker["files_checked"] in out
    assert "skipped (no TensorRT" in out
    assert recap(out, "nano-a")["failed"] == "0"


def test_tampered_host_is_refused_without_leftovers(fleet_run):
    tmp, code, out = fleet_run
    assert "nano-b: FAILED at step [Verify every sha256 on the device]" in out, out[-3000:]
    assert "sha256 mismatch" in out and "model.onnx" in out
    assert not os.path.lexists(os.path.join(tmp, "b", "current"))
    assert os.listdir(os.path.join(tmp, "b", "releases")) == []  # staging removed
    assert recap(out, "nano-b")["failed"] == "1"


def test_unreachable_host_is_reported(fleet_run):
    tmp, code, out = fleet_run
    assert recap(out, "nano-c")["unreachable"] == "1"
    assert not os.path.exists(os.path.join(tmp, "c"))


def test_unsupported_l4t_release_is_refused_before_copy(fleet_run):
    tmp, code, out = fleet_run
    assert "nano-d: FAILED at step [Check the L4T release]" in out
    assert "JetPack 4.5 or older" in out
    assert os.listdir(os.path.join(tmp, "d", "releases")) == []
    assert recap(out, "nano-d")["failed"] == "1"
