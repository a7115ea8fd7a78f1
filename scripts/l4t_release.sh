# shellcheck shell=bash disable=SC2034  # the variables set here are read by the scripts that source it
# Sourced by setup_jetson.sh and docker_run_jetson.sh (not run on its own).
# Reads the L4T release from ${L4T_ROOT}/etc/nv_tegra_release and maps it to JetPack and to the
# matching NVIDIA container image. L4T_ROOT (default: empty = /) lets tests use a fake root.
#
# /etc/nv_tegra_release looks like:
#   # R32 (release), REVISION: 7.1, GCID: 29818004, BOARD: t210ref, EABI: aarch64, DATE: ...

L4T_MAJOR=""
L4T_MINOR=""
L4T_PATCH=""
L4T_VERSION=""
JETPACK=""
JETPACK_NOTE=""

# l4t_parse LINE: set L4T_MAJOR/MINOR/PATCH/VERSION from the file's first line; return 2 if unparsable.
l4t_parse() {
  if [[ "$1" =~ R([0-9]+)\ \(release\),\ REVISION:\ ([0-9]+)\.([0-9]+) ]]; then
    L4T_MAJOR="${BASH_REMATCH[1]}"
    L4T_MINOR="${BASH_REMATCH[2]}"
    L4T_PATCH="${BASH_REMATCH[3]}"
    L4T_VERSION="$L4T_MAJOR.$L4T_MINOR.$L4T_PATCH"
    return 0
  fi
  return 2
}

# l4t_read: parse ${L4T_ROOT}/etc/nv_tegra_release; return 1 when the file is missing, 2 when unparsable.
l4t_read() {
  local file="${L4T_ROOT:-}/etc/nv_tegra_release"
  [[ -r "$file" ]] || return 1
  l4t_parse "$(head -n 1 "$file")"
}

# l4t_jetpack: set JETPACK and JETPACK_NOTE for a supported release; return 1 (JETPACK_NOTE says why) if not.
l4t_jetpack() {
  case "$L4T_MAJOR.$L4T_MINOR" in
    32.6) JETPACK="4.6"; JETPACK_NOTE="Ubuntu 18.04, Python 3.6, CUDA 10.2, TensorRT 8.0.1" ;;
    32.7) JETPACK="4.6.$L4T_PATCH"
          JETPACK_NOTE="Ubuntu 18.04, Python 3.6, CUDA 10.2, TensorRT 8.2.1" ;;
    35.*) JETPACK="5.x"; JETPACK_NOTE="Ubuntu 20.04, Python 3.8, CUDA 11.4, TensorRT 8.5 (Orin / Xavier)" ;;
    36.*) JETPACK="6.x"; JETPACK_NOTE="Ubuntu 22.04, Python 3.10, CUDA 12, TensorRT 10 (Orin)" ;;
    32.*)
      JETPACK=""
      JETPACK_NOTE="L4T R$L4T_VERSION is JetPack 4.5 or older, which is not supported: flash JetPack 4.6.x (L4T R32.7.x, the last release for the Jetson Nano)"
      return 1 ;;
    *)
      JETPACK=""
      JETPACK_NOTE="L4T R$L4T_VERSION is not supported: use JetPack 4.6.x (L4T R32.6/R32.7) on a Jetson Nano, JetPack 5 (R35) or JetPack 6 (R36) on Orin"
      return 1 ;;
  esac
  return 0
}

# l4t_docker_base: print "IMAGE TAG" of the NVIDIA base image matching this release.
# JetPack 4 images get CUDA/TensorRT mounted from the host (--runtime nvidia); JetPack 5/6 use
# l4t-jetpack, which contains them (after dusty-nv/jetson-inference docker/tag.sh).
l4t_docker_base() {
  case "$L4T_MAJOR.$L4T_MINOR" in
    32.6) echo "nvcr.io/nvidia/l4t-base r32.6.1" ;;
    32.7) echo "nvcr.io/nvidia/l4t-base r32.7.1" ;;
    35.1) echo "nvcr.io/nvidia/l4t-jetpack r35.1.0" ;;
    35.2) echo "nvcr.io/nvidia/l4t-jetpack r35.2.1" ;;
    35.3) echo "nvcr.io/nvidia/l4t-jetpack r35.3.1" ;;
    35.*) echo "nvcr.io/nvidia/l4t-jetpack r35.4.1" ;;
    36.2) echo "nvcr.io/nvidia/l4t-jetpack r36.2.0" ;;
    36.3) echo "nvcr.io/nvidia/l4t-jetpack r36.3.0" ;;
    36.*) echo "nvcr.io/nvidia/l4t-jetpack r36.4.0" ;;
    *) return 1 ;;
  esac
}

# l4t_detect PROG: read + map, or print a clear error naming PROG and return 1.
l4t_detect() {
  local prog="$1" status=0
  l4t_read || status=$?
  if [[ "$status" -eq 1 ]]; then
    echo "$prog: error: ${L4T_ROOT:-}/etc/nv_tegra_release not found: this is not a Jetson running L4T (JetPack). Run this on the Jetson itself." >&2
    return 1
  elif [[ "$status" -ne 0 ]]; then
    echo "$prog: error: cannot parse ${L4T_ROOT:-}/etc/nv_tegra_release (first line: '$(head -n 1 "${L4T_ROOT:-}/etc/nv_tegra_release")'); expected '# R32 (release), REVISION: 7.1, ...'" >&2
    return 1
  fi
  if ! l4t_jetpack; then
    echo "$prog: error: $JETPACK_NOTE" >&2
    return 1
  fi
  return 0
}
