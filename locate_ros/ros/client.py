"""Driving a locate_node from another process: start it, wait on conditions, walk its lifecycle.

Shared by the demo, the benchmarks and the tests (rclpy is imported by the callers' functions).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time


def rgb_image(rgb, stamp_s: int = 0, frame_id: str = "camera_optical", stamp_ns: int = 0):
    """An HxWx3 uint8 array as a sensor_msgs/Image (rgb8) with the given header."""
    import numpy as np
    from sensor_msgs.msg import Image

    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", step=rgb.shape[1] * 3)
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    msg.header.stamp.sec, msg.header.stamp.nanosec = stamp_s, stamp_ns
    msg.header.frame_id = frame_id
    return msg


def start_node(*ros_args: str, **popen) -> subprocess.Popen:
    """`python -m locate_ros.ros.node --ros-args ...` in its own process."""
    return subprocess.Popen([sys.executable, "-m", "locate_ros.ros.node", "--ros-args", *ros_args], **popen)


def stop_node(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGINT (a clean rclpy shutdown), then kill if it does not exit in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def spin_until(node, cond, what: str, timeout: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    """Spin `node` until cond() holds; fail after `timeout` s or as soon as `proc` (the node under test) exits."""
    import rclpy

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the node exited (code {proc.returncode}) while waiting for {what}")
        rclpy.spin_once(node, timeout_sec=0.02)


def change_state(node, target: str, transition_id: int, proc: subprocess.Popen | None = None) -> bool:
    """Ask the lifecycle node named `target` (fully qualified) for a transition; True if it succeeded."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    cli = node.create_client(ChangeState, f"{target}/change_state")
    try:
        spin_until(node, cli.service_is_ready, f"{target}/change_state", proc=proc)
        fut = cli.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        spin_until(node, fut.done, f"transition {transition_id} of {target}", proc=proc)
        return bool(fut.result().success)
    finally:
        node.destroy_client(cli)
