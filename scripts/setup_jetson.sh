#!/usr/bin/env bash
# Prepare a Jetson (Nano on JetPack 4.6.x; Orin on JetPack 5/6) to run edge_runtime with TensorRT.
# Idempotent: every step checks first and only does what is missing. Run it on the device.
set -Eeuo pipefail

PROG="setup_jetson.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
APP="$(cd "$HERE/.." && pwd -P)"
# shellcheck source=l4t_release.sh source-path=SCRIPTDIR
. "$HERE/l4t_release.sh"

usage() {
  cat <<'EOF'
usage: scripts/setup_jetson.sh [options]

Checks the L4T/JetPack release, TensorRT's Python module and OpenCV's GStreamer support,
apt-installs what is missing (python3-pip, python3-venv, python3-dev, build-essential),
creates a venv with --system-site-packages (JetPack's tensorrt and cv2 stay visible),
upgrades pip (below 22 on Python 3.6: pip 9 cannot install manylinux2014 wheels), builds
pycuda with CUDA on PATH, pins numpy (requirements/jetson.txt), offers a swap file, and
finishes with `python3 -m edge_runtime info`. Safe to run again.

options (defaults in brackets):
  --venv DIR         virtual environment to create or reuse [<install dir>/venv when run from a
                     release made by deploy.sh (e.g. ~/nano-digits/venv), else $HOME/nano-digits/venv]
  --swap             create a swap file without asking (helps TensorRT engine builds)
  --no-swap          do not offer a swap file
  --swap-size GB     size of the swap file [4]
  --dry-run          print what would be done; change nothing
  -h, --help         this help

environment (for tests): L4T_ROOT=/fake/root reads etc/, proc/, var/lib/dpkg/ and usr/local/cuda
under that folder; SETUP_PYTHON=python3 is the system Python that is probed and used for the venv.

examples:
  scripts/setup_jetson.sh                      # on the Nano, after flashing JetPack 4.6.x
  scripts/setup_jetson.sh --swap --swap-size 4
  scripts/setup_jetson.sh --dry-run            # what would change?
  ~/nano-digits/current/scripts/setup_jetson.sh   # from a release copied by `make deploy`

exit status: 0 when the device is ready; 1 on an unsupported release or a failed step; 2 on bad usage.
EOF
}

# Inside a release made by deploy.sh (<dir>/releases/<id>/scripts) the venv is <dir>/venv, where
# deploy.sh looks for it; elsewhere ~/nano-digits/venv.
if [[ "$(basename "$(dirname "$APP")")" == "releases" ]]; then
  VENV="$(dirname "$(dirname "$APP")")/venv"
else
  VENV="${HOME:-/root}/nano-digits/venv"
fi
SWAP="ask"
SWAP_GB=4
DRY_RUN=0
SYS_PY="${SETUP_PYTHON:-python3}"
ROOT="${L4T_ROOT:-}"
CUDA_HOME="/usr/local/cuda"

die() {
  echo "$PROG: error: $*" >&2
  exit 1
}
trap 'die "this step failed (line $LINENO: $BASH_COMMAND); fix the cause shown above and run $PROG again (it only redoes what is missing)"' ERR

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --venv) [[ $# -ge 2 ]] || { echo "$PROG: error: --venv needs a folder" >&2; exit 2; }; VENV="$2"; shift 2 ;;
    --swap) SWAP="yes"; shift ;;
    --no-swap) SWAP="no"; shift ;;
    --swap-size)
      [[ $# -ge 2 && "$2" =~ ^[1-9][0-9]*$ ]] || { echo "$PROG: error: --swap-size expects whole GB, e.g. 4" >&2; exit 2; }
      SWAP_GB="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    *) echo "$PROG: error: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

say() {
  echo "$PROG: $*"
}

# act CMD...: run a command that changes the system (only printed with --dry-run).
act() {
  if [[ "$DRY_RUN" -eq 1 ]]; then
    echo "$PROG: would run: $*"
  else
    echo "$PROG: running: $*"
    local status=0
    "$@" || status=$?
    [[ "$status" -eq 0 ]] || die "'$*' failed (exit $status); fix the cause shown above and run $PROG again (it only redoes what is missing)"
  fi
}

SUDO=()
if [[ "$(id -u)" -ne 0 ]]; then
  SUDO=(sudo)
fi

# ---------------------------------------------------------------------------
# 1. release
# ---------------------------------------------------------------------------
l4t_detect "$PROG" || exit 1
say "L4T R$L4T_VERSION = JetPack $JETPACK ($JETPACK_NOTE)"

# ---------------------------------------------------------------------------
# 2. system Python, TensorRT, OpenCV
# ---------------------------------------------------------------------------
command -v "$SYS_PY" >/dev/null 2>&1 || die "$SYS_PY not found; JetPack ships python3: sudo apt-get install python3"
PY_VERSION="$("$SYS_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$L4T_MAJOR" in 32) PY_EXPECTED="3.6" ;; 35) PY_EXPECTED="3.8" ;; *) PY_EXPECTED="3.10" ;; esac
if [[ "$PY_VERSION" == "$PY_EXPECTED" ]]; then
  say "system Python $PY_VERSION ($SYS_PY)"
else
  say "warning: system Python is $PY_VERSION ($SYS_PY) but JetPack $JETPACK ships $PY_EXPECTED, whose tensorrt and cv2 modules the venv needs; set SETUP_PYTHON=python$PY_EXPECTED"
fi

APT_WANTED=(python3-pip python3-venv python3-dev build-essential)
TRT_VERSION="$("$SYS_PY" -c 'import tensorrt; print(tensorrt.__version__)' 2>/dev/null || true)"
if [[ -n "$TRT_VERSION" ]]; then
  say "TensorRT Python module: $TRT_VERSION"
else
  say "TensorRT Python module: missing (JetPack's python3-libnvinfer provides it; will install)"
  APT_WANTED+=(python3-libnvinfer)
fi
GST="$("$SYS_PY" -c 'import cv2, re
m = re.search(r"GStreamer:\s*(\w+)", cv2.getBuildInformation())
print(m.group(1) if m else "NO")' 2>/dev/null || echo "missing")"
case "$GST" in
  YES) say "OpenCV: GStreamer YES (csi:// cameras work)" ;;
  missing) say "warning: OpenCV's Python module is missing: csi:// and /dev/video cameras need JetPack's OpenCV (sudo apt-get install nvidia-opencv); pip's opencv-python has no GStreamer" ;;
  *) say "warning: this OpenCV has no GStreamer: csi:// cameras will not open. Use JetPack's OpenCV (sudo apt-get install nvidia-opencv) and remove pip's opencv-python from the venv" ;;
esac

# ---------------------------------------------------------------------------
# 3. apt packages (only the missing ones)
# ---------------------------------------------------------------------------
dpkg_installed() {
  local status_file="$ROOT/var/lib/dpkg/status"
  [[ -r "$status_file" ]] || return 1
  awk -v pkg="$1" '
    /^Package: / { name = $2 }
    /^Status: / && name == pkg && $0 ~ /install ok installed/ { found = 1 }
    END { exit found ? 0 : 1 }' "$status_file"
}
APT_MISSING=()
for pkg in "${APT_WANTED[@]}"; do
  dpkg_installed "$pkg" || APT_MISSING+=("$pkg")
done
if [[ "${#APT_MISSING[@]}" -eq 0 ]]; then
  say "apt: ${APT_WANTED[*]} already installed"
else
  say "apt: installing ${APT_MISSING[*]}"
  act "${SUDO[@]}" apt-get update
  act "${SUDO[@]}" apt-get install -y --no-install-recommends "${APT_MISSING[@]}"
fi

# ---------------------------------------------------------------------------
# 4. venv that still sees JetPack's tensorrt and cv2
# ---------------------------------------------------------------------------
VPY="$VENV/bin/python3"
if [[ -x "$VPY" ]] && grep -qi '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" 2>/dev/null; then
  say "venv $VENV already exists (system site packages: yes)"
else
  if [[ -e "$VENV" ]]; then
    die "$VENV exists but is not a venv with --system-site-packages (tensorrt and cv2 would be invisible); move it away or pass --venv DIR"
  fi
  act "$SYS_PY" -m venv --system-site-packages "$VENV"
fi

# ---------------------------------------------------------------------------
# 5. pip, numpy, pycuda
# ---------------------------------------------------------------------------
if [[ "$PY_VERSION" == "3.6" ]]; then
  PIP_SPEC="pip<22"  # pip 21.3 is the last for Python 3.6; pip 9 cannot read manylinux2014 wheels
else
  PIP_SPEC="pip"
fi
if [[ -x "$VPY" ]] && "$VPY" -c 'import numpy, pycuda.driver' >/dev/null 2>&1; then
  say "numpy $("$VPY" -c 'import numpy; print(numpy.__version__)') and pycuda already installed in the venv"
else
  act "$VPY" -m pip install --upgrade "$PIP_SPEC" wheel  # wheel: pycuda builds a wheel, not a legacy install
  [[ -x "$ROOT$CUDA_HOME/bin/nvcc" ]] \
    || die "CUDA compiler $CUDA_HOME/bin/nvcc not found: pycuda is compiled on the device. Install JetPack's CUDA toolkit (sudo apt-get install nvidia-jetpack, or cuda-toolkit-10-2 on JetPack 4) and run this again"
  # numpy first (pinned by the same file, used as constraints): pycuda's setup.py needs it to build.
  act "$VPY" -m pip install -c "$APP/requirements/jetson.txt" numpy
  say "building pycuda against $CUDA_HOME (this takes several minutes on a Nano)"
  act env "PATH=$CUDA_HOME/bin:$PATH" "CUDA_ROOT=$CUDA_HOME" "$VPY" -m pip install -r "$APP/requirements/jetson.txt"
fi

# ---------------------------------------------------------------------------
# 6. swap (offered, never forced)
# ---------------------------------------------------------------------------
swap_mib="$(awk '/^SwapTotal:/ {print int($2 / 1024)}' "$ROOT/proc/meminfo" 2>/dev/null || echo 0)"
swap_mib="${swap_mib:-0}"
SWAPFILE="/var/swapfile-nano-digits"
if [[ "$SWAP" == "no" ]]; then
  say "swap: ${swap_mib} MiB; not offering a swap file (--no-swap)"
elif [[ -e "$ROOT$SWAPFILE" ]]; then
  say "swap: ${swap_mib} MiB; $SWAPFILE already exists"
elif ((swap_mib >= SWAP_GB * 1024)); then
  say "swap: ${swap_mib} MiB is enough"
else
  answer="n"
  if [[ "$SWAP" == "yes" ]]; then
    answer="y"
  elif [[ -t 0 && "$DRY_RUN" -eq 0 ]]; then
    read -r -p "$PROG: only ${swap_mib} MiB swap; engine builds can run out of memory. Create a ${SWAP_GB} GB swap file at $SWAPFILE? [y/N] " answer || answer="n"
  else
    say "swap: only ${swap_mib} MiB; TensorRT builds can run out of memory. To add ${SWAP_GB} GB: $PROG --swap"
  fi
  if [[ "$answer" =~ ^[Yy] ]]; then
    act "${SUDO[@]}" fallocate -l "${SWAP_GB}G" "$SWAPFILE"
    act "${SUDO[@]}" chmod 600 "$SWAPFILE"
    act "${SUDO[@]}" mkswap "$SWAPFILE"
    act "${SUDO[@]}" swapon "$SWAPFILE"
    if ! grep -qs "^$SWAPFILE " "$ROOT/etc/fstab"; then
      act "${SUDO[@]}" sh -c "echo '$SWAPFILE none swap sw 0 0' >> /etc/fstab"
    fi
  fi
fi

# ---------------------------------------------------------------------------
# 7. the runtime's own report
# ---------------------------------------------------------------------------
if [[ -d "$APP/edge_runtime" ]]; then
  if [[ "$DRY_RUN" -eq 1 ]]; then
    act "$VPY" -m edge_runtime info
  else
    (cd "$APP" && act "$VPY" -m edge_runtime info) || die "edge_runtime info failed in $APP (see above)"
  fi
else
  say "no edge_runtime/ next to this script; deploy it with: make deploy HOST=user@this-device"
fi
say "done: venv $VENV (use: $VPY -m edge_runtime ...)"
