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

    A reply can be lost: DDS may deliver a request before the node has discovered this client's
    reply reader (a known race of ROS 2 services), and nothing then answers. So when no reply comes
    within `reply_timeout` s, the node's state is asked (re-asked every second while unanswered: that
    reply can be lost too; the node's single-threaded executor answers after any transition it is
    running). The transition's end state means it succeeded; any other means the request never
    arrived, is still queued, or failed, and it is sent again. The first reply decides, except that
    a refusal after a resend may be the node refusing a duplicate of a request that did run (the
    transition is no longer available from its new state): then the state decides.
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

    def left() -> float:
        return max(0.0, deadline - time.monotonic())

    def first_reply(futures, wait: float, label: str):
        """The first answered of `futures` within `wait` s, or None (TimeoutError past the deadline)."""
        try:
            spin_until(node, lambda: any(f.done() for f in futures), label, min(wait, left()), proc=proc)
        except TimeoutError:
            if left() == 0.0:
                raise
            return None
        return next(f for f in futures if f.done())

    def ask_state(also=()):
        """The node's state reply (asked again every second while unanswered), or any of `also` answered first."""
        asked = []
        while True:
            asked.append(get.call_async(GetState.Request()))
            if (reply := first_reply([*also, *asked], 1.0, f"{what} (or its state)")) is not None:
                return reply

    try:
        spin_until(node, lambda: change.service_is_ready() and get.service_is_ready(), f"{target} lifecycle services",
                   timeout, proc=proc)
        request = ChangeState.Request(transition=Transition(id=transition_id))
        sent = [change.call_async(request)]
        wait = reply_timeout
        while True:
            reply = first_reply(sent, wait, what)
            if reply is not None:
                break
            state = ask_state(also=sent)
            if any(state is f for f in sent):  # a late change_state reply
                reply = state
                break
            if state.result().current_state.id == end_state:
                return True
            sent.append(change.call_async(request))
            wait = max(reply_timeout, 1.0)
        if reply.result().success or len(sent) == 1:
            return bool(reply.result().success)
        return ask_state().result().current_state.id == end_state
    finally:
        node.destroy_client(change)
        node.destroy_client(get)
