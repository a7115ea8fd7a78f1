"""A throw-away OpenSSH server on 127.0.0.1 that plays the Jetson for deployment tests.

Debian's openssh-server (`apt-get install openssh-server`, in .ci/run) runs as
`sshd -D -f <cfg> -e` with its own host key, authorized_keys and pid file in a
temp folder; the test logs in with a key generated here. The "device" python is
this interpreter (it has numpy), passed to the scripts with --remote-python.
"""

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


class Device(object):
    """Connection facts for the fake device."""

    def __init__(self, folder, port, key, user):
        self.folder = folder
        self.port = port
        self.key = key
        self.user = user
        self.host = "%s@127.0.0.1" % user
        self.known_hosts = os.path.join(folder, "known_hosts")
        self.python = sys.executable

    def deploy_args(self, remote_dir):
        return [
            "--host", self.host, "--port", str(self.port), "--identity", self.key,
            "--ssh-option", "UserKnownHostsFile=" + self.known_hosts,
            "--remote-dir", remote_dir, "--remote-python", self.python,
        ]


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def wait_for_port(port, proc, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


SSHD_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {folder}/host_ed25519
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
MaxStartups 50
Subsystem sftp {sftp}
"""


def find_sftp_server():
    for path in ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/lib/ssh/sftp-server"):
        if os.path.exists(path):
            return path
    return "internal-sftp"


@pytest.fixture(scope="session")
def device(tmp_path_factory):
    if not os.path.exists(SSHD) or not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        pytest.skip("OpenSSH server/client not installed (apt-get install openssh-server openssh-client; .ci/run does)")
    folder = str(tmp_path_factory.mktemp("device"))
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.check_call(keygen + ["-f", os.path.join(folder, "host_ed25519")])
    subprocess.check_call(keygen + ["-f", os.path.join(folder, "client_key")])
    shutil.copy(os.path.join(folder, "client_key.pub"), os.path.join(folder, "authorized_keys"))
    port = free_port()
    config = os.path.join(folder, "sshd_config")
    with open(config, "w") as handle:
        handle.write(SSHD_CONFIG.format(port=port, folder=folder, sftp=find_sftp_server()))
    if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755)  # privilege separation directory
    log = open(os.path.join(folder, "sshd.log"), "w")
    proc = subprocess.Popen([SSHD, "-D", "-f", config, "-e"], stdout=log, stderr=subprocess.STDOUT)
    try:
        if not wait_for_port(port, proc):
            log.flush()
            with open(os.path.join(folder, "sshd.log")) as handle:
                text = handle.read()
            pytest.skip("sshd did not start: %s" % text.strip()[-400:])
        yield Device(folder, port, os.path.join(folder, "client_key"), getpass.getuser())
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def deploy_bundle(tmp_path_factory):
    """artifacts/tiny made with tests/fixtures/tiny.py (needs onnx on the workstation)."""
    pytest.importorskip("onnx")
    from tests.fixtures.tiny import linear_bundle

    artifacts = tmp_path_factory.mktemp("artifacts")
    linear_bundle(str(artifacts / "tiny"))
    return str(artifacts / "tiny")
