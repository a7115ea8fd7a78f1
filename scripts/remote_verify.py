#!/usr/bin/env python3
"""Checksums for deployment: runs on the workstation and on the Jetson (Python 3.6+, stdlib only).

    remote_verify.py files BUNDLE        check a bundle against its manifest; print the files to copy
    remote_verify.py sums DIR            write DIR/SHA256SUMS (sha256sum format) for every file in DIR
    remote_verify.py verify DIR          on the device: check DIR/SHA256SUMS and the bundle manifests
                                         with edge_runtime.manifest.verify_files; write a marker file

scripts/deploy.sh and ansible/deploy.yml call it; it never changes the files it checks.
"""

import argparse
import hashlib
import os
import socket
import sys
import time

PROG = "remote_verify"
SUMS_NAME = "SHA256SUMS"
MARKER = os.path.join(".deploy", "verified.json")
# The repository checkout (workstation) or the deployed release (device): edge_runtime/ sits beside scripts/.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EPILOG = """examples:
  python3 scripts/remote_verify.py files artifacts/cnn
  python3 scripts/remote_verify.py sums /tmp/stage
  python3 scripts/remote_verify.py verify ~/nano-digits/releases/20261123T101500Z
exit status: 0 = all good, 1 = a missing or changed file (the message names it), 2 = bad usage
"""


class CheckError(Exception):
    """A file is missing or does not match its recorded sha256."""


def manifest_module(root=ROOT):
    """edge_runtime.manifest from ``root`` (the runtime's own bundle rules; no second copy of them here)."""
    if root not in sys.path:
        sys.path.insert(0, root)
    from edge_runtime import manifest as mf

    return mf


def sha256_file(path, chunk=1 << 20):
    """Stdlib on purpose: it checks the deployed edge_runtime/ itself, so it must not run that code first."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def check_hashes(folder, hashes, what):
    for name, expected in sorted(hashes.items()):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            raise CheckError("%s: %s is missing; the copy is incomplete" % (what, path))
        actual = sha256_file(path)
        if actual != expected:
            raise CheckError(
                "%s: sha256 mismatch for %s: expected %s..., found %s...; the file was changed or copied "
                "incompletely" % (what, path, expected[:12], actual[:12])
            )
    return len(hashes)


def bundle_files(bundle):
    """Verify a bundle on this machine and return the relative names that belong to it."""
    mf = manifest_module()
    try:
        manifest = mf.load(bundle, check_files=True)
    except mf.ManifestError as exc:
        raise CheckError(str(exc)) from exc
    names = sorted(mf.recorded_files(manifest))
    if not names:
        raise CheckError("%s/manifest.json records no sha256 for any file; re-export with `make export`" % bundle)
    return ["manifest.json"] + names


def walk_files(folder):
    names = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", ".deploy"))
        for name in sorted(files):
            rel = os.path.relpath(os.path.join(root, name), folder)
            if rel != SUMS_NAME and not name.endswith(".pyc"):
                names.append(rel.replace(os.sep, "/"))
    return names


def write_sums(folder):
    lines = ["%s  %s\n" % (sha256_file(os.path.join(folder, name)), name) for name in walk_files(folder)]
    tmp = os.path.join(folder, "." + SUMS_NAME + ".tmp")
    with open(tmp, "w") as handle:
        handle.writelines(lines)
    os.rename(tmp, os.path.join(folder, SUMS_NAME))
    return len(lines)


def read_sums(folder):
    path = os.path.join(folder, SUMS_NAME)
    if not os.path.isfile(path):
        raise CheckError("%s is missing; the copy is incomplete (deploy again)" % path)
    hashes = {}
    with open(path, "r") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line:
                digest, name = line.split("  ", 1)
                hashes[name] = digest
    return hashes


def bundles_in(folder):
    root = os.path.join(folder, "artifacts")
    if not os.path.isdir(root):
        return []
    return [os.path.join(root, d) for d in sorted(os.listdir(root))
            if os.path.isfile(os.path.join(root, d, "manifest.json"))]


def verify_with_runtime(folder, bundle):
    """Check a bundle with the deployed edge_runtime.manifest (the runtime's own rules)."""
    mf = manifest_module(folder)  # the copy that was just deployed
    try:
        mf.load(bundle, check_files=True)
    except mf.ManifestError as exc:
        raise CheckError("edge_runtime.manifest: %s" % exc) from exc


def verify_release(folder):
    host = socket.gethostname()
    count = check_hashes(folder, read_sums(folder), "release on %s" % host)
    bundles = bundles_in(folder)
    if not bundles:
        raise CheckError("%s has no artifacts/<model>/manifest.json; the copy is incomplete" % folder)
    for bundle in bundles:
        verify_with_runtime(folder, bundle)
    marker = {
        "host": host,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files_checked": count,
        "bundles": [os.path.basename(b) for b in bundles],
        "sha256sums": sha256_file(os.path.join(folder, SUMS_NAME)),
        "python": sys.version.split()[0],
    }
    manifest_module(folder).atomic_write_json(os.path.join(folder, MARKER), marker)
    return count, bundles, host


def run_files(args):
    for name in bundle_files(args.bundle):
        print(name)


def run_sums(args):
    count = write_sums(args.folder)
    sys.stderr.write("%s: wrote %s for %d files\n" % (PROG, os.path.join(args.folder, SUMS_NAME), count))


def run_verify(args):
    count, bundles, host = verify_release(args.folder)
    print("%s: %s: sha256 verified for %d files in %s; bundle %s matches its manifest (marker %s)"
          % (PROG, host, count, args.folder, ", ".join(os.path.basename(b) for b in bundles), MARKER))


def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__.split("\n\n")[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    files = sub.add_parser("files", help="verify a local bundle; print manifest.json and the files it lists")
    files.add_argument("bundle", help="bundle folder (artifacts/<model>)")
    files.set_defaults(handler=run_files)
    sums = sub.add_parser("sums", help="write FOLDER/SHA256SUMS for every file under FOLDER")
    sums.add_argument("folder")
    sums.set_defaults(handler=run_sums)
    verify = sub.add_parser("verify", help="check FOLDER/SHA256SUMS and each bundle manifest; write a marker")
    verify.add_argument("folder")
    verify.set_defaults(handler=run_verify)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        args.handler(args)
    except CheckError as exc:
        sys.stderr.write("%s: error: %s\n" % (PROG, exc))
        return 1
    except (OSError, ValueError) as exc:
        sys.stderr.write("%s: error: %s\n" % (PROG, exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
