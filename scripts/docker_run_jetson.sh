#!/usr/bin/env bash
# Run live digit recognition in a container on a Jetson, with the NVIDIA base image that matches
# this device's L4T release (a mismatched image cannot load the host's CUDA/TensorRT libraries).
set -euo pipefail

PROG="docker_run_jetson.sh"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
# shellcheck source=l4t_release.sh source-path=SCRIPTDIR
. "$HERE/l4t_release.sh"

usage() {
  cat <<'EOF'
usage: scripts/docker_run_jetson.sh [options] [-- edge_runtime run arguments]

Maps this Jetson's L4T release (/etc/nv_tegra_release) to the matching NVIDIA image
(l4t-base:r32.7.1 on JetPack 4.6.x, l4t-jetpack:r35.x / r36.x on JetPack 5 / 6), builds
docker/Dockerfile.jetson for it when asked, and runs the container with --runtime nvidia,
every camera device (/dev/video*) and the Argus socket (/tmp/argus_socket) for CSI cameras.

options (defaults in brackets):
  --model DIR        bundle folder mounted into the container at /app/model [artifacts/cnn]
  --source URI       camera or file for `edge_runtime run` [csi://0]
  --image NAME       image name; the L4T tag is appended [nano-digits-jetson]
  --build            docker build docker/Dockerfile.jetson for this release first
  --port N           publish the MJPEG viewer on 127.0.0.1:N (edge_runtime run --serve) [off]
  --dry-run          print the docker commands instead of running them
  -h, --help         this help

environment (for tests): L4T_ROOT=/fake/root reads etc/nv_tegra_release and dev/video* there.

examples:
  scripts/docker_run_jetson.sh --build
  scripts/docker_run_jetson.sh --model artifacts/mlp --source /dev/video1 --port 8080
  scripts/docker_run_jetson.sh --dry-run -- --backend onnxruntime --headless --jsonl /app/out/run.jsonl

exit status: 0 on success, 1 on an unsupported L4T release or a docker failure, 2 on bad usage.
EOF
}

MODEL="artifacts/cnn"
SOURCE="csi://0"
IMAGE="nano-digits-jetson"
BUILD=0
PORT=""
DRY_RUN=0
EXTRA=()

usage_error() {
  echo "$PROG: error: $*; see --help" >&2
  exit 2
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --model) [[ $# -ge 2 ]] || usage_error "--model needs a folder"; MODEL="$2"; shift 2 ;;
    --source) [[ $# -ge 2 ]] || usage_error "--source needs a URI"; SOURCE="$2"; shift 2 ;;
    --image) [[ $# -ge 2 ]] || usage_error "--image needs a name"; IMAGE="$2"; shift 2 ;;
    --build) BUILD=1; shift ;;
    --port)
      [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || usage_error "--port expects a number"
      PORT="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    *) usage_error "unknown option '$1'" ;;
  esac
done

l4t_detect "$PROG" || exit 1
read -r BASE_IMAGE BASE_TAG < <(l4t_docker_base) || {
  echo "$PROG: error: no NVIDIA container image is known for L4T R$L4T_VERSION; pass a matching base with docker build --build-arg L4T_BASE=... --build-arg L4T_TAG=..." >&2
  exit 1
}
TAGGED="$IMAGE:$BASE_TAG"
echo "$PROG: L4T R$L4T_VERSION (JetPack $JETPACK) -> base $BASE_IMAGE:$BASE_TAG, image $TAGGED"

[[ -f "$MODEL/manifest.json" ]] || {
  echo "$PROG: error: no bundle at $MODEL (manifest.json missing); copy one with make deploy or pass --model DIR" >&2
  exit 1
}
MODEL_ABS="$(cd "$MODEL" && pwd)"

run_or_print() {
  if [[ "$DRY_RUN" -eq 1 ]]; then
    printf '%q ' "$@"
    printf '\n'
  else
    "$@"
  fi
}

if [[ "$BUILD" -eq 1 ]]; then
  BUILD_ARGS=(--build-arg "L4T_BASE=$BASE_IMAGE" --build-arg "L4T_TAG=$BASE_TAG")
  # l4t-jetpack images already carry JetPack's OpenCV; l4t-base (JetPack 4) installs it from apt
  [[ "$BASE_IMAGE" != */l4t-jetpack ]] || BUILD_ARGS+=(--build-arg "OPENCV_PKG=")
  run_or_print docker build -f "$REPO/docker/Dockerfile.jetson" "${BUILD_ARGS[@]}" -t "$TAGGED" "$REPO" \
    || { echo "$PROG: error: docker build failed for $TAGGED (see above)" >&2; exit 1; }
fi

DOCKER=(docker run --rm --runtime nvidia --network host -e DISPLAY="${DISPLAY:-}")
[[ -t 0 ]] && DOCKER+=(-it)
DOCKER+=(-v "$MODEL_ABS:/app/model:ro")
DOCKER+=(-v /tmp/argus_socket:/tmp/argus_socket)
for dev in "${L4T_ROOT:-}"/dev/video*; do
  [[ -e "$dev" ]] || continue
  DOCKER+=(--device "/dev/${dev##*/}")
done
if [[ -d "${L4T_ROOT:-}/tmp/.X11-unix" ]]; then
  DOCKER+=(-v /tmp/.X11-unix:/tmp/.X11-unix)
fi
RUN_ARGS=(--model /app/model --source "$SOURCE")
[[ -z "$PORT" ]] || RUN_ARGS+=(--serve "127.0.0.1:$PORT")
run_or_print "${DOCKER[@]}" "$TAGGED" "${RUN_ARGS[@]}" "${EXTRA[@]+"${EXTRA[@]}"}" \
  || { echo "$PROG: error: the container exited with an error (see above)" >&2; exit 1; }
