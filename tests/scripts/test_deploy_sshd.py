"""A real deployment over SSH to a throw-away sshd on 127.0.0.1 (see conftest.py).

`make deploy` / scripts/deploy.sh must copy the runtime and the bundle, verify every sha256 on
the device, run `edge_runtime info` there, switch `current` atomically, and on any failure
(tampered copy, bad key, unreachable host, no space, missing bundle) exit non-zero naming the
step and host while leaving the previous release current and no staging folder behind.
"""

import hashlib
import json
import os
import shutil
import subprocess

import pytest

from tests.scripts.conftest import ROOT, free_port
from tests.scripts.fakeroot import release_line

DEPLOY = os.path.join(ROOT, "scripts", "deploy.sh")


def sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def run(cmd, env_extra=None, timeout=120):
    env = dict(os.environ)
    env["DEPLOY_LOCAL_PYTHON"] = env.get("DEPLOY_LOCAL_PYTHON", __import__("sys").executable)
    env.update(env_extra or {})
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def deploy(device, bundle, remote_dir, *extra, **kw):
    cmd = ["bash", DEPLOY, "--model", bundle, "--no-bench"] + device.deploy_args(remote_dir) + list(extra)
    return run(cmd, **kw)


def releases(remote_dir):
    folder = os.path.join(remote_dir, "releases")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def current_target(remote_dir):
    return os.readlink(os.path.join(remote_dir, "current"))


@pytest.fixture(scope="module")
def installed(device, deploy_bundle, tmp_path_factory):
    """One successful deploy through `make deploy` (rsync); later tests build on it."""
    home = tmp_path_factory.mktemp("home")
    remote_dir = str(home / "nano-digits")
    (home / "nv_tegra_release").write_text(release_line("32.7.1") + "\n")  # the "device" is a Nano
    artifacts, model = os.path.split(deploy_bundle)
    extra = " ".join(device.deploy_args(remote_dir)[2:]) + " --no-bench --transfer rsync"
    code, out, err = run(["make", "--no-print-directory", "deploy", "HOST=" + device.host,
                          "ARTIFACTS=" + artifacts, "MODEL=" + model, "DEPLOY_ARGS=" + extra],
                         env_extra={"DEPLOY_REMOTE_L4T_FILE": str(home / "nv_tegra_release")})
    return remote_dir, code, out, err


def test_make_deploy_installs_verified_release(installed, deploy_bundle):
    remote_dir, code, out, err = installed
    assert code == 0, out + err
    release = current_target(remote_dir)
    assert release.startswith("releases/") and not release.endswith(".partial")
    bundle = os.path.join(remote_dir, "current", "artifacts", "tiny")
    # the files landed, byte for byte
    for name in ("manifest.json", "model.onnx"):
        assert sha256(os.path.join(bundle, name)) == sha256(os.path.join(deploy_bundle, name))
    assert sha256(os.path.join(remote_dir, "current", "edge_runtime", "manifest.py")) == \
        sha256(os.path.join(ROOT, "edge_runtime", "manifest.py"))
    # the device checked every file listed in SHA256SUMS and left its marker
    with open(os.path.join(remote_dir, "current", "SHA256SUMS")) as handle:
        listed = [line for line in handle if line.strip()]
    with open(os.path.join(remote_dir, "current", ".deploy", "verified.json")) as handle:
        marker = json.load(handle)
    assert marker["files_checked"] == len(listed) >= 5
    assert marker["bundles"] == ["tiny"]
    assert "sha256 verified for %d files" % len(listed) in out
    # `edge_runtime info` ran on the device (its report names numpy and the backends)
    assert "numpy" in out.lower() and "onnxruntime" in out.lower()
    # no TensorRT here: the engine step is skipped with a note, not an error
    assert "no TensorRT Python module" in out
    assert "edge_runtime run --model artifacts/tiny" in out  # how to start live recognition
    assert not [r for r in releases(remote_dir) if r.endswith(".partial")]
    assert "L4T R32.7.1 = JetPack 4.6.1" in out


def test_redeploy_with_scp_switches_and_keeps_previous(installed, device, deploy_bundle):
    remote_dir = installed[0]
    before = current_target(remote_dir)
    bench = "--backend onnxruntime --batch 1,4 --iters 5 --warmup 1 --no-pipeline --out bench-out"
    cmd = ["bash", DEPLOY, "--model", deploy_bundle, "--transfer", "scp", "--bench-args", bench]
    code, out, err = run(cmd + device.deploy_args(remote_dir))
    assert code == 0, out + err
    after = current_target(remote_dir)
    assert after != before and os.path.isdir(os.path.join(remote_dir, before))
    assert "copied with scp" in out
    # the short benchmark ran on the device, in the new release
    assert "| onnxruntime | 4 |" in out
    assert os.listdir(os.path.join(remote_dir, after, "bench-out"))
    assert os.path.isfile(os.path.join(remote_dir, after, ".deploy", "verified.json"))


def test_tampered_copy_on_device_is_refused_and_current_kept(installed, device, deploy_bundle):
    remote_dir = installed[0]
    before = current_target(remote_dir)
    before_releases = releases(remote_dir)
    hook = 'printf x >> "$REMOTE_STAGING/artifacts/tiny/model.onnx"'
    code, out, err = deploy(device, deploy_bundle, remote_dir, env_extra={"DEPLOY_HOOK_AFTER_COPY": hook})
    assert code == 1, out + err
    assert "step 'verify' on %s" % device.host in err
    assert "sha256 mismatch" in err and "model.onnx" in err
    assert current_target(remote_dir) == before
    assert releases(remote_dir) == before_releases  # staging folder removed
    assert "removed the staging folder" in err


def test_truncated_runtime_file_is_refused(installed, device, deploy_bundle):
    remote_dir = installed[0]
    before = current_target(remote_dir)
    hook = ': > "$REMOTE_STAGING/edge_runtime/manifest.py"'  # a partial copy
    code, out, err = deploy(device, deploy_bundle, remote_dir, env_extra={"DEPLOY_HOOK_AFTER_COPY": hook})
    assert code == 1 and "step 'verify'" in err and "edge_runtime/manifest.py" in err, err
    assert current_target(remote_dir) == before


def test_locally_tampered_bundle_is_refused_before_copy(device, deploy_bundle, tmp_path):
    bad = str(tmp_path / "tiny")
    shutil.copytree(deploy_bundle, bad)
    with open(os.path.join(bad, "model.onnx"), "ab") as handle:
        handle.write(b"\0")
    remote_dir = str(tmp_path / "nano-digits")
    code, out, err = deploy(device, bad, remote_dir)
    assert code == 1
    assert "step 'bundle'" in err and "sha256 mismatch" in err and "nothing was copied" in err
    assert not os.path.exists(remote_dir)


def test_unsupported_l4t_release_is_refused(device, deploy_bundle, tmp_path):
    (tmp_path / "nv_tegra_release").write_text(release_line("32.5.1") + "\n")
    code, out, err = deploy(device, deploy_bundle, str(tmp_path / "nd"),
                            env_extra={"DEPLOY_REMOTE_L4T_FILE": str(tmp_path / "nv_tegra_release")})
    assert code == 1 and "step 'connect' on %s" % device.host in err
    assert "JetPack 4.5 or older" in err and "flash JetPack 4.6.x" in err
    assert not os.path.exists(str(tmp_path / "nd"))


def test_missing_bundle_is_named(device, tmp_path):
    code, out, err = deploy(device, str(tmp_path / "nope"), str(tmp_path / "nd"))
    assert code == 1 and "step 'bundle'" in err and "make train" in err
    (tmp_path / "half").mkdir()  # a folder without manifest.json (training still running)
    code, out, err = deploy(device, str(tmp_path / "half"), str(tmp_path / "nd"))
    assert code == 1 and "manifest.json is missing" in err and "nothing was copied" in err
    assert not os.path.exists(str(tmp_path / "nd"))


def test_wrong_key_or_user_fails_at_connect(device, deploy_bundle, tmp_path):
    other = str(tmp_path / "other_key")
    subprocess.check_call(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other])
    args = device.deploy_args(str(tmp_path / "nd"))
    args[args.index("--identity") + 1] = other
    code, out, err = run(["bash", DEPLOY, "--model", deploy_bundle] + args)
    assert code == 1
    assert "step 'connect' on %s" % device.host in err and "ssh-copy-id" in err
    assert "Permission denied" in err
    args = device.deploy_args(str(tmp_path / "nd"))
    args[args.index("--host") + 1] = "no-such-user-7@127.0.0.1"  # wrong user, right key
    code, out, err = run(["bash", DEPLOY, "--model", deploy_bundle] + args)
    assert code == 1 and "step 'connect' on no-such-user-7@127.0.0.1" in err and "Permission denied" in err
    assert not os.path.exists(str(tmp_path / "nd"))


def test_unreachable_host_fails_at_connect(device, deploy_bundle, tmp_path):
    args = device.deploy_args(str(tmp_path / "nd"))
    args[args.index("--port") + 1] = str(free_port())  # nothing listens there
    code, out, err = run(["bash", DEPLOY, "--model", deploy_bundle] + args)
    assert code == 1 and "step 'connect'" in err and "SSH connection failed" in err


def test_no_space_on_device_is_refused_before_copy(installed, device, deploy_bundle):
    remote_dir = installed[0]
    before, before_releases = current_target(remote_dir), releases(remote_dir)
    code, out, err = deploy(device, deploy_bundle, remote_dir, "--min-free-mb", str(1 << 40))
    assert code == 1 and "step 'space'" in err and "not enough free space" in err
    assert current_target(remote_dir) == before and releases(remote_dir) == before_releases


def test_prune_keeps_newest_releases(installed, device, deploy_bundle):
    remote_dir = installed[0]
    code, out, err = deploy(device, deploy_bundle, remote_dir, "--keep", "1")
    assert code == 0, out + err
    assert releases(remote_dir) == [os.path.basename(current_target(remote_dir))]


def test_help_and_bad_usage():
    code, out, err = run(["bash", DEPLOY, "--help"])
    assert code == 0 and "usage: scripts/deploy.sh" in out and "examples:" in out
    code, out, err = run(["bash", DEPLOY, "--model", "x"])
    assert code == 2 and "--host USER@HOST is required" in err
    code, out, err = run(["bash", DEPLOY, "--host", "a@b", "--port", "ssh"])
    assert code == 2 and "--port expects a number" in err
