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


def change_state(node, target: str, transition_id: int, proc: subprocess.Popen | None = None,
                 timeout: float = 120.0, reply_timeout: float = 15.0) -> bool:
    """Ask the lifecycle node named `target` (fully qualified) for a transition; True if it succeeded.

    A reply can be lost: DDS may deliver the request before the node has discovered this client's
    reply reader (a known race of ROS 2 services), and nothing then answers. So when no reply comes
    within `reply_timeout` s, the node's state is asked (its single-threaded executor answers after
    any transition it is running): the transition's end state means it succeeded; any other means
    the request never arrived or failed, and it is sent once more, whose reply (or a late first
    one) decides.
    """
    from lifecycle_msgs.msg import State, Transition
    from lifecycle_msgs.srv import ChangeState, GetState

    end_state = {Transition.TRANSITION_CONFIGURE: State.PRIMARY_STATE_INACTIVE,
                 Transition.TRANSITION_CLEANUP: State.PRIMARY_STATE_UNCONFIGURED,
                 Transition.TRANSITION_ACTIVATE: State.PRIMARY_STATE_ACTIVE,
                 Transition.TRANSITION_DEACTIVATE: State.PRIMARY_STATE_INACTIVE}.get(transition_id,
                                                                                     State.PRIMARY_STATE_FINALIZED)
    deadline = time.monotonic() + timeout
    what = f"transition {transition_id} of {target}"
    change = node.create_client(ChangeState, f"{target}/change_state")
    get = node.create_client(GetState, f"{target}/get_state")
    try:
        spin_until(node, lambda: change.service_is_ready() and get.service_is_ready(), f"{target} lifecycle services",
                   timeout, proc=proc)
        request = ChangeState.Request(transition=Transition(id=transition_id))
        first = change.call_async(request)
        try:
            spin_until(node, first.done, what, max(0.0, min(reply_timeout, deadline - time.monotonic())), proc=proc)
            return bool(first.result().success)
        except TimeoutError:
            pass
        state = get.call_async(GetState.Request())
        spin_until(node, lambda: first.done() or state.done(), f"{what} (or its state)",
                   max(0.0, deadline - time.monotonic()), proc=proc)
        if first.done():
            return bool(first.result().success)
        if state.result().current_state.id == end_state:
            return True
        second = change.call_async(request)
        spin_until(node, lambda: first.done() or second.done(), what, max(0.0, deadline - time.monotonic()), proc=proc)
        return bool((first if first.done() else second).result().success)
    finally:
        node.destroy_client(change)
        node.destroy_client(get)
