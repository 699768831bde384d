# Source me (bash):  source scripts/ros_env.sh
# Runtime environment of the pip route built by scripts/setup_ros_venv.sh: the venv (ROS 2 wheels,
# torch, the core) + the colcon install space (locate_ros messages and code, vision_msgs compat).
#
# Network: the node keeps ROS-normal defaults (discovers across the network). Tests, CI and demos
# ask for loopback-only with LOCATE_ROS_LOCALHOST=1, which sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
# and, unless ROS_DOMAIN_ID is already set, a random ROS_DOMAIN_ID (1..101) so runs do not cross-talk.
# Env: VENV (default .venv).

_locate_ros_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_locate_ros_venv="${VENV:-.venv}"
case "$_locate_ros_venv" in /*) ;; *) _locate_ros_venv="$_locate_ros_root/$_locate_ros_venv" ;; esac

if [ ! -x "$_locate_ros_venv/bin/python" ]; then
  echo "ros_env.sh: run 'bash scripts/setup_ros_venv.sh' first" >&2
  return 1 2>/dev/null || exit 1
fi

# shellcheck disable=SC1091
source "$_locate_ros_venv/bin/activate"
# The venv is the underlay prefix (rclpy, std_msgs... live there): ament_index lookups need it.
case ":${AMENT_PREFIX_PATH:-}:" in
  *":$VIRTUAL_ENV:"*) ;;
  *) export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}" ;;
esac
# colcon's setup.bash: AMENT_PREFIX_PATH, PYTHONPATH (install/*/lib/python3.X/site-packages),
# LD_LIBRARY_PATH (typesupport libraries), CMAKE_PREFIX_PATH for every package in ./install.
# (colcon's scripts read unset variables: do not source them under `set -u`.)
if [ -f "$_locate_ros_root/install/setup.bash" ]; then
  # shellcheck disable=SC1091
  source "$_locate_ros_root/install/setup.bash"
elif [ "$(uname -m)" = x86_64 ]; then
  echo "ros_env.sh: install/ is missing: run 'bash scripts/setup_ros_venv.sh'" >&2
  return 1 2>/dev/null || exit 1
fi  # elsewhere: the core-only venv (no ROS 2 wheels for this machine)

if [ "${LOCATE_ROS_LOCALHOST:-0}" = 1 ]; then
  export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
  export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( (RANDOM % 101) + 1 ))}"
fi
unset _locate_ros_root _locate_ros_venv
