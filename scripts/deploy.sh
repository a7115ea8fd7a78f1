#!/usr/bin/env bash
# Deploy the edge runtime and one model bundle to a Jetson (or any Linux box) over key-based SSH:
# copy to a staging release, verify every sha256 on the device, smoke-test, build the TensorRT
# engine there, then switch `current` atomically. Nothing half-installed is ever made current.
# Remote scripts are single-quoted on purpose: "$1" etc. expand in the device's shell.
# shellcheck disable=SC2016
set -euo pipefail

PROG="deploy.sh"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=l4t_release.sh source-path=SCRIPTDIR
. "$REPO/scripts/l4t_release.sh"

usage() {
  cat <<'EOF'
usage: scripts/deploy.sh --host USER@HOST [options]

Copy edge_runtime/ and a model bundle (artifacts/<model>: manifest.json + the files it lists)
to HOST:<remote-dir>/releases/<id>.partial, verify every sha256 there, run
`python3 -m edge_runtime info`, build the TensorRT engine (when the device has TensorRT),
switch <remote-dir>/current to the new release atomically, then run a short benchmark.

options (defaults in brackets):
  --host USER@HOST       target, key-based SSH only (BatchMode=yes; never asks for a password)
  --model DIR|NAME       bundle folder, or a name under artifacts/ [artifacts/cnn]
  --port N               SSH port [22, or your ~/.ssh/config]
  --identity FILE        SSH private key (ssh -i) [your ssh-agent / ~/.ssh defaults]
  --ssh-option OPT       extra `ssh -o OPT`, repeatable (e.g. UserKnownHostsFile=/tmp/kh)
  --remote-dir DIR       install folder on the device, relative to its home or absolute [nano-digits]
  --remote-python PY     python on the device; auto = <remote-dir>/venv/bin/python3 (made by
                         scripts/setup_jetson.sh) when present, else python3 [auto]
  --transfer MODE        auto | rsync | scp; auto uses rsync when both ends have it [auto]
  --no-engine            do not build the TensorRT engine (auto-skipped when the device has no TensorRT)
  --require-engine       fail when the device has no TensorRT instead of skipping the engine
  --no-bench             skip the short benchmark
  --bench-args "ARGS"    arguments for `edge_runtime bench`, run in <remote-dir>/current
                         [--backend all --batch 1,8 --iters 50 --warmup 5 --frames 60 --out bench-out]
  --min-free-mb N        free space the device must keep after the copy [300]
  --keep N               releases kept on the device, current included [3]
  --connect-timeout S    SSH connect timeout in seconds [10]
  --local-python PY      python3 used on this machine for checksums [$DEPLOY_LOCAL_PYTHON or python3]
  --stage-only DIR       only verify the bundle and write the release tree (with SHA256SUMS) into the
                         new folder DIR, then stop; no --host needed (ansible/deploy.yml uses this)
  -h, --help             this help

environment: DEPLOY_LOCAL_PYTHON (see --local-python); for tests only: DEPLOY_HOOK_AFTER_COPY
(a command run here after the copy, with REMOTE_STAGING set: fault injection) and
DEPLOY_REMOTE_L4T_FILE (the device's L4T release file) [/etc/nv_tegra_release]

examples:
  make deploy HOST=nano@192.168.1.50 MODEL=cnn
  scripts/deploy.sh --host nano@jetson.local --model artifacts/mlp --no-bench
  scripts/deploy.sh --host nano@10.0.0.7 --port 2222 --identity ~/.ssh/nano_ed25519 --remote-dir /opt/nano-digits

exit status: 0 on success; 1 when a step fails (the message names the step and the host);
2 on bad usage. A failed deploy removes its staging folder and leaves `current` untouched.
EOF
}

# ---------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------
HOST=""
MODEL="artifacts/cnn"
PORT=""
IDENTITY=""
SSH_OPTIONS=()
REMOTE_DIR="nano-digits"
REMOTE_PYTHON="auto"
TRANSFER="auto"
ENGINE="auto"
BENCH=1
BENCH_ARGS="--backend all --batch 1,8 --iters 50 --warmup 5 --frames 60 --out bench-out"
MIN_FREE_MB=300
KEEP=3
CONNECT_TIMEOUT=10
LOCAL_PYTHON="${DEPLOY_LOCAL_PYTHON:-python3}"
STAGE_ONLY=""

STEP="options"

die() {
  echo "$PROG: error: step '$STEP'${HOST:+ on $HOST}: $*" >&2
  exit 1
}

usage_error() {
  echo "$PROG: error: $*" >&2
  echo "$PROG: run scripts/deploy.sh --help for usage and examples" >&2
  exit 2
}

need_value() {
  if [[ $# -lt 2 || -z "$2" ]]; then
    usage_error "$1 needs a value"
  fi
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help) usage; exit 0 ;;
    --host) need_value "$@"; HOST="$2"; shift 2 ;;
    --model) need_value "$@"; MODEL="$2"; shift 2 ;;
    --port) need_value "$@"; PORT="$2"; shift 2 ;;
    --identity) need_value "$@"; IDENTITY="$2"; shift 2 ;;
    --ssh-option) need_value "$@"; SSH_OPTIONS+=("$2"); shift 2 ;;
    --remote-dir) need_value "$@"; REMOTE_DIR="$2"; shift 2 ;;
    --remote-python) need_value "$@"; REMOTE_PYTHON="$2"; shift 2 ;;
    --transfer) need_value "$@"; TRANSFER="$2"; shift 2 ;;
    --no-engine) ENGINE="no"; shift ;;
    --require-engine) ENGINE="yes"; shift ;;
    --no-bench) BENCH=0; shift ;;
    --bench-args) need_value "$@"; BENCH_ARGS="$2"; shift 2 ;;
    --min-free-mb) need_value "$@"; MIN_FREE_MB="$2"; shift 2 ;;
    --keep) need_value "$@"; KEEP="$2"; shift 2 ;;
    --connect-timeout) need_value "$@"; CONNECT_TIMEOUT="$2"; shift 2 ;;
    --local-python) need_value "$@"; LOCAL_PYTHON="$2"; shift 2 ;;
    --stage-only) need_value "$@"; STAGE_ONLY="$2"; shift 2 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
done

[[ -n "$HOST" || -n "$STAGE_ONLY" ]] || usage_error "--host USER@HOST is required (key-based SSH, e.g. nano@192.168.1.50)"
[[ -z "$PORT" || "$PORT" =~ ^[0-9]+$ ]] || usage_error "--port expects a number, got '$PORT'"
[[ "$MIN_FREE_MB" =~ ^[0-9]+$ ]] || usage_error "--min-free-mb expects a number of MiB, got '$MIN_FREE_MB'"
[[ "$KEEP" =~ ^[1-9][0-9]*$ ]] || usage_error "--keep expects a number >= 1, got '$KEEP'"
[[ "$CONNECT_TIMEOUT" =~ ^[0-9]+$ ]] || usage_error "--connect-timeout expects seconds, got '$CONNECT_TIMEOUT'"
case "$TRANSFER" in auto | rsync | scp) ;; *) usage_error "--transfer expects auto, rsync or scp, got '$TRANSFER'" ;; esac
[[ "$REMOTE_DIR" =~ ^[A-Za-z0-9_./~-]+$ ]] \
  || usage_error "--remote-dir '$REMOTE_DIR' may only use letters, digits and _ . / ~ -"
[[ -z "$IDENTITY" || -r "$IDENTITY" ]] || usage_error "--identity $IDENTITY is not a readable key file"

# ---------------------------------------------------------------------------
# SSH helpers (BatchMode: key-based only, never a password prompt)
# ---------------------------------------------------------------------------
# One SSH connection, reused by every step (ControlMaster): a Nano's CPU makes each handshake slow.
CONTROL_DIR="$(mktemp -d)"
SSH_COMMON=(-o BatchMode=yes -o ConnectTimeout="$CONNECT_TIMEOUT" -o StrictHostKeyChecking=accept-new
  -o ControlMaster=auto -o ControlPath="$CONTROL_DIR/%C" -o ControlPersist=120)
if [[ -n "$IDENTITY" ]]; then
  SSH_COMMON+=(-i "$IDENTITY" -o IdentitiesOnly=yes)
fi
for option in "${SSH_OPTIONS[@]+"${SSH_OPTIONS[@]}"}"; do
  SSH_COMMON+=(-o "$option")
done
SSH_CMD=(ssh "${SSH_COMMON[@]}")
SCP_CMD=(scp -q -r -p "${SSH_COMMON[@]}")
if [[ -n "$PORT" ]]; then
  SSH_CMD+=(-p "$PORT")
  SCP_CMD+=(-P "$PORT")
fi

# Quote one word for the remote POSIX shell.
quote() {
  local s="$1"
  printf "'%s'" "${s//\'/\'\\\'\'}"
}

SSH_ERR="$(mktemp)"
# run_remote SCRIPT ARGS...: run a POSIX sh script on the device with positional arguments.
run_remote() {
  local script="$1"
  shift
  local words="sh -s --" arg
  for arg in "$@"; do
    words+=" $(quote "$arg")"
  done
  # One brace group: the remote shell parses the whole script before running it, and no command
  # in it can swallow the rest of the script from stdin.
  printf '{\n%s\n} </dev/null\n' "$script" | "${SSH_CMD[@]}" "$HOST" "$words" 2>"$SSH_ERR"
}

# Show the remote stderr and turn an ssh failure into a named-step error.
remote_failed() {
  local status="$1" what="$2"
  if [[ -s "$SSH_ERR" ]]; then
    sed 's/^/  remote: /' "$SSH_ERR" >&2
  fi
  if [[ "$status" -eq 255 ]]; then
    die "SSH connection failed ($what); check that the device is up and reachable and that your key is authorised"
  fi
  die "$what (exit $status)"
}

# ---------------------------------------------------------------------------
# cleanup: remove the local stage and, after a failure, the remote staging folder
# ---------------------------------------------------------------------------
LOCAL_STAGE=""
REMOTE_STAGING=""
SWITCHED=0
PREVIOUS=""

cleanup() {
  local status=$?
  if [[ "$status" -ne 0 && -n "$REMOTE_STAGING" && "$SWITCHED" -eq 0 ]]; then
    if run_remote 'rm -rf "$1"' "$REMOTE_STAGING"; then
      echo "$PROG: removed the staging folder $HOST:$REMOTE_STAGING; current still points to ${PREVIOUS:-nothing (first deploy)}" >&2
    else
      echo "$PROG: could not remove $HOST:$REMOTE_STAGING (remove it by hand); current is unchanged" >&2
    fi
  fi
  [[ -z "$LOCAL_STAGE" ]] || rm -rf "$LOCAL_STAGE"
  "${SSH_CMD[@]}" -O exit "$HOST" >/dev/null 2>&1 || true
  rm -rf "$SSH_ERR" "$CONTROL_DIR"
  exit "$status"
}
trap cleanup EXIT
trap 'die "unexpected failure (line $LINENO)"' ERR

log() {
  echo "$PROG: [$STEP] $*"
}

# ---------------------------------------------------------------------------
# 1. bundle: verify the local copy against its manifest, build the stage
# ---------------------------------------------------------------------------
STEP="bundle"
if [[ -d "$MODEL" ]]; then
  MODEL_DIR="$(cd "$MODEL" && pwd)"
elif [[ "$MODEL" != */* && -d "$REPO/artifacts/$MODEL" ]]; then
  MODEL_DIR="$REPO/artifacts/$MODEL"
else
  die "no bundle folder at '$MODEL'; train and export one first (make train), or pass --model artifacts/<name>"
fi
MODEL_NAME="$(basename "$MODEL_DIR")"
command -v "$LOCAL_PYTHON" >/dev/null 2>&1 \
  || die "'$LOCAL_PYTHON' not found on this machine; pass --local-python or set DEPLOY_LOCAL_PYTHON"

bundle_list="$("$LOCAL_PYTHON" "$REPO/scripts/remote_verify.py" files "$MODEL_DIR")" \
  || die "the local bundle $MODEL_DIR failed its check (see above); nothing was copied"
BUNDLE_FILES=()
while IFS= read -r name; do
  BUNDLE_FILES+=("$name")
done <<<"$bundle_list"

if [[ -n "$STAGE_ONLY" ]]; then
  [[ ! -e "$STAGE_ONLY" ]] || die "--stage-only $STAGE_ONLY already exists; pass a new folder"
  mkdir -p "$STAGE_ONLY"
  STAGE_ONLY="$(cd "$STAGE_ONLY" && pwd)"
fi
LOCAL_STAGE="$(mktemp -d)"
tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' -cf - edge_runtime | tar -C "$LOCAL_STAGE" -xf -
mkdir -p "$LOCAL_STAGE/scripts" "$LOCAL_STAGE/requirements" "$LOCAL_STAGE/artifacts/$MODEL_NAME"
cp -p "$REPO/scripts/remote_verify.py" "$LOCAL_STAGE/scripts/"
for helper in setup_jetson.sh l4t_release.sh; do
  [[ ! -f "$REPO/scripts/$helper" ]] || cp -p "$REPO/scripts/$helper" "$LOCAL_STAGE/scripts/"
done
cp -p "$REPO/requirements/jetson.txt" "$LOCAL_STAGE/requirements/"
for name in "${BUNDLE_FILES[@]}"; do
  mkdir -p "$(dirname "$LOCAL_STAGE/artifacts/$MODEL_NAME/$name")"
  cp -p "$MODEL_DIR/$name" "$LOCAL_STAGE/artifacts/$MODEL_NAME/$name"
done
RELEASE_ID="$(date -u +%Y%m%dT%H%M%SZ)-$$"
COMMIT="$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)"
printf '{"release": "%s", "model": "%s", "commit": "%s", "from": "%s"}\n' \
  "$RELEASE_ID" "$MODEL_NAME" "$COMMIT" "$(hostname)" >"$LOCAL_STAGE/DEPLOY_INFO.json"
"$LOCAL_PYTHON" "$REPO/scripts/remote_verify.py" sums "$LOCAL_STAGE" 2>/dev/null \
  || die "could not write SHA256SUMS for the release in $LOCAL_STAGE (is the disk full?)"
STAGE_KB="$(du -sk "$LOCAL_STAGE" | cut -f1)"
log "bundle $MODEL_NAME verified locally (${#BUNDLE_FILES[@]} files); release $RELEASE_ID is ${STAGE_KB} KiB"
if [[ -n "$STAGE_ONLY" ]]; then
  cp -pR "$LOCAL_STAGE/." "$STAGE_ONLY/"
  log "release tree written to $STAGE_ONLY"
  exit 0
fi

# ---------------------------------------------------------------------------
# 2. connect: log in, resolve the install folder and the python to use
# ---------------------------------------------------------------------------
STEP="connect"
PROBE='set -eu
dir="$1"; py="$2"; l4t_file="$3"
case "$dir" in "~") dir="$HOME" ;; "~/"*) dir="$HOME/${dir#??}" ;; /*) ;; *) dir="$HOME/$dir" ;; esac
echo "dir=$dir"
echo "hostname=$(uname -n)"
if command -v rsync >/dev/null 2>&1; then echo "rsync=yes"; else echo "rsync=no"; fi
if [ "$py" = auto ]; then
  if [ -x "$dir/venv/bin/python3" ]; then py="$dir/venv/bin/python3"; else py=python3; fi
fi
echo "python=$py"
echo "python_version=$("$py" -c "import sys; print(\"%d.%d\" % sys.version_info[:2])" 2>/dev/null || echo none)"
if [ -L "$dir/current" ]; then echo "current=$(readlink "$dir/current")"; fi
if [ -r "$l4t_file" ]; then echo "l4t=$(head -n 1 "$l4t_file")"; fi'
# DEPLOY_REMOTE_L4T_FILE: tests point it at a fake /etc/nv_tegra_release on the "device".
probe_output="$(run_remote "$PROBE" "$REMOTE_DIR" "$REMOTE_PYTHON" "${DEPLOY_REMOTE_L4T_FILE:-/etc/nv_tegra_release}")" || remote_failed $? "cannot log in with key-based SSH (BatchMode=yes)${PORT:+ on port $PORT}; install your key with: ssh-copy-id ${PORT:+-p $PORT }$HOST"
probe_value() {
  sed -n "s/^$1=//p" <<<"$probe_output" | head -n 1
}
DIR="$(probe_value dir)"
PY="$(probe_value python)"
PY_VERSION="$(probe_value python_version)"
PREVIOUS="$(probe_value current)"
REMOTE_NAME="$(probe_value hostname)"
L4T="$(probe_value l4t)"
case "$PY_VERSION" in
  none | "") die "no working '$PY' on the device; install python3 (JetPack ships 3.6) or pass --remote-python" ;;
  2.* | 3.[0-5]) die "'$PY' on the device is Python $PY_VERSION; edge_runtime needs Python 3.6+" ;;
esac
if [[ -n "$L4T" ]]; then
  l4t_parse "$L4T" || die "$REMOTE_NAME: cannot parse /etc/nv_tegra_release ('$L4T')"
  l4t_jetpack || die "$REMOTE_NAME: $JETPACK_NOTE"
  L4T="L4T R$L4T_VERSION = JetPack $JETPACK"
else
  L4T="not a Jetson (no /etc/nv_tegra_release): no TensorRT engine unless TensorRT is installed"
fi
log "logged in to $REMOTE_NAME ($L4T); install folder $DIR; python $PY ($PY_VERSION)"

# ---------------------------------------------------------------------------
# 3. space: refuse before copying when the device would run out of disk
# ---------------------------------------------------------------------------
STEP="space"
free_kb="$(run_remote 'set -eu; mkdir -p "$1/releases"; df -Pk "$1/releases" | awk "NR==2 {print \$4}"' "$DIR")" \
  || remote_failed $? "cannot create or measure $DIR/releases"
need_kb=$((STAGE_KB + MIN_FREE_MB * 1024))
if [[ ! "$free_kb" =~ ^[0-9]+$ ]]; then
  die "could not read the free space of $DIR (df printed '$free_kb')"
fi
if ((free_kb < need_kb)); then
  die "not enough free space in $DIR: $((free_kb / 1024)) MiB free, need $((need_kb / 1024)) MiB (release + --min-free-mb $MIN_FREE_MB for the engine build); free some space (old releases: $DIR/releases) and deploy again"
fi
log "$((free_kb / 1024)) MiB free in $DIR (need $((need_kb / 1024)) MiB)"

# ---------------------------------------------------------------------------
# 4. copy: into releases/<id>.partial
# ---------------------------------------------------------------------------
STEP="copy"
REMOTE_STAGING="$DIR/releases/$RELEASE_ID.partial"
FINAL="$DIR/releases/$RELEASE_ID"
run_remote 'mkdir "$1"' "$REMOTE_STAGING" || remote_failed $? "cannot create $REMOTE_STAGING"
if [[ "$TRANSFER" == "auto" ]]; then
  if command -v rsync >/dev/null 2>&1 && [[ "$(probe_value rsync)" == "yes" ]]; then
    TRANSFER="rsync"
  else
    TRANSFER="scp"
  fi
fi
if [[ "$TRANSFER" == "rsync" ]]; then
  command -v rsync >/dev/null 2>&1 || die "rsync is not installed here; install it or use --transfer scp"
  rsh=""
  for word in "${SSH_CMD[@]}"; do
    rsh+="$(quote "$word") "
  done
  rsync -a --delete -e "$rsh" "$LOCAL_STAGE/" "$HOST:$REMOTE_STAGING/" 2>"$SSH_ERR" \
    || remote_failed $? "rsync to $REMOTE_STAGING failed"
else
  "${SCP_CMD[@]}" "$LOCAL_STAGE"/* "$HOST:$REMOTE_STAGING/" 2>"$SSH_ERR" \
    || remote_failed $? "scp to $REMOTE_STAGING failed"
fi
log "copied with $TRANSFER to $REMOTE_STAGING"
if [[ -n "${DEPLOY_HOOK_AFTER_COPY:-}" ]]; then
  # Fault injection for tests (e.g. tamper with the staged copy); runs here, not on the device.
  REMOTE_STAGING="$REMOTE_STAGING" DEPLOY_HOST="$HOST" bash -c "$DEPLOY_HOOK_AFTER_COPY"
fi

# ---------------------------------------------------------------------------
# 5. verify: every sha256 on the device, then the runtime's own manifest check
# ---------------------------------------------------------------------------
STEP="verify"
verify_output="$(run_remote 'cd "$1" && "$2" scripts/remote_verify.py verify "$1"' "$REMOTE_STAGING" "$PY")" \
  || remote_failed $? "checksum verification failed on the device; the copy is damaged or incomplete"
echo "$verify_output"
log "sha256 verified on $REMOTE_NAME"

# ---------------------------------------------------------------------------
# 6. smoke test: the new release's runtime starts on the device
# ---------------------------------------------------------------------------
STEP="info"
run_remote 'cd "$1" && "$2" -m edge_runtime info --model "artifacts/$3"' "$REMOTE_STAGING" "$PY" "$MODEL_NAME" \
  || remote_failed $? "'python3 -m edge_runtime info' failed in the new release"

# ---------------------------------------------------------------------------
# 7. engine: build or refresh the TensorRT engine in the new release
# ---------------------------------------------------------------------------
STEP="engine"
if [[ "$ENGINE" == "no" ]]; then
  log "skipped (--no-engine)"
else
  if run_remote '"$1" -c "import tensorrt" >/dev/null 2>&1' "$PY"; then
    # The previous release's engine cache travels along: build-engine reuses an engine whose
    # sidecar still matches (same ONNX sha256, TensorRT, GPU, precision) and rebuilds otherwise.
    run_remote 'set -eu
      prev="$1/current/artifacts/$3"; new="$2/artifacts/$3"
      if [ -d "$prev/engines" ]; then cp -pR "$prev/engines" "$new/"; fi
      cd "$2" && "$4" -m edge_runtime build-engine --model "artifacts/$3"' \
      "$DIR" "$REMOTE_STAGING" "$MODEL_NAME" "$PY" \
      || remote_failed $? "engine build failed on the device (try --no-engine, or add swap: scripts/setup_jetson.sh --swap)"
    log "engine ready in releases/$RELEASE_ID/artifacts/$MODEL_NAME"
  elif [[ "$ENGINE" == "yes" ]]; then
    die "the device has no TensorRT Python module for $PY (--require-engine); run scripts/setup_jetson.sh on it"
  else
    log "note: $REMOTE_NAME has no TensorRT Python module for $PY; engine build skipped (ONNX Runtime / OpenCV backends will run the ONNX model). On a Jetson run scripts/setup_jetson.sh, then deploy again"
  fi
fi

# ---------------------------------------------------------------------------
# 8. switch: rename the staging folder, swap the `current` symlink atomically (mv -T)
# ---------------------------------------------------------------------------
STEP="switch"
run_remote 'set -eu
  mv "$2" "$3"
  ln -sfn "releases/$4" "$1/.current.$4"
  mv -T "$1/.current.$4" "$1/current"' "$DIR" "$REMOTE_STAGING" "$FINAL" "$RELEASE_ID" \
  || remote_failed $? "could not switch $DIR/current to releases/$RELEASE_ID"
SWITCHED=1
REMOTE_STAGING=""
log "$DIR/current -> releases/$RELEASE_ID (was: ${PREVIOUS:-none})"

# ---------------------------------------------------------------------------
# 9. prune: keep the newest --keep releases, drop leftovers of interrupted deploys
# ---------------------------------------------------------------------------
STEP="prune"
run_remote 'set -eu
  cd "$1/releases"
  current="$(basename "$(readlink "$1/current")")"
  for d in *.partial; do [ ! -d "$d" ] || rm -rf "$d"; done
  ls -1 | grep -v "\.partial$" | sort -r | awk -v keep="$2" -v cur="$current" "NR > keep && \$0 != cur" |
    while read -r old; do rm -rf "$old"; echo "removed old release $old"; done' "$DIR" "$KEEP" \
  || remote_failed $? "could not prune old releases in $DIR/releases"

# ---------------------------------------------------------------------------
# 10. bench: a short benchmark of the installed release
# ---------------------------------------------------------------------------
STEP="bench"
if [[ "$BENCH" -eq 1 ]]; then
  read -r -a bench_words <<<"$BENCH_ARGS"
  log "edge_runtime bench --model artifacts/$MODEL_NAME $BENCH_ARGS (in $DIR/current)"
  run_remote 'set -eu; dir="$1"; py="$2"; model="$3"; shift 3
    cd "$dir/current" && "$py" -m edge_runtime bench --model "artifacts/$model" "$@"' \
    "$DIR" "$PY" "$MODEL_NAME" "${bench_words[@]}" \
    || remote_failed $? "benchmark failed (the release is installed: $DIR/current); rerun with --no-bench to skip"
else
  log "skipped (--no-bench)"
fi

STEP="done"
cat <<EOF
$PROG: deployed $MODEL_NAME to $HOST:$DIR/current (release $RELEASE_ID)
start live recognition on the device:
  ssh -t $HOST 'cd $DIR/current && $PY -m edge_runtime run --model artifacts/$MODEL_NAME --source csi://0 --serve 127.0.0.1:8080'
then watch it from this machine:
  ssh -N -L 8080:127.0.0.1:8080 $HOST    # and open http://127.0.0.1:8080
benchmark again / parity report:
  ssh $HOST 'cd $DIR/current && $PY -m edge_runtime verify-jetson --model artifacts/$MODEL_NAME'
EOF
