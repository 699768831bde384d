"""locate_node against every kind of bad input, several cameras and the queue frame-drop policy.

The node runs in its own process; this process publishes over real DDS (loopback) and waits on
messages, log lines and matched endpoints only.
"""
import subprocess
import threading
import time

import numpy as np
import pytest
from conftest import load_npz

from locate_ros.ros.client import change_state, rgb_image, spin_until, start_node, stop_node

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("loopback_only")]
TIMEOUT = 60.0


def started_node(ns: str, checkpoint, *params: str):
    args = ["-r", f"__ns:={ns}", "-p", f"model_path:={checkpoint}", "-p", "max_new_tokens:=12",
            "-p", "diagnostics_period_s:=0.2", "-p", "debug_image:=false"]
    for p in params:
        args += ["-p", p]
    proc = start_node(*args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.log = []
    threading.Thread(target=lambda: proc.log.extend(iter(proc.stdout.readline, "")), daemon=True).start()
    return proc


def activate(client, ns, proc):
    from lifecycle_msgs.msg import Transition

    for t in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        assert change_state(client, f"{ns}/locate_node", t, proc=proc), f"transition {t} failed"


class Session:
    """Publishers to one node and the answers it sends back."""

    def __init__(self, client, ns, proc, image_topics=("image",), reliable_images=False):
        from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from locate_ros.msg import LocateCommand, LocatedPoints

        self.client, self.ns, self.proc, self.points = client, ns, proc, []
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE) if reliable_images \
            else qos_profile_sensor_data
        self.images = {t: client.create_publisher(Image, f"{ns}/{t}", qos) for t in image_topics}
        self.commands = client.create_publisher(LocateCommand, f"{ns}/locate_node/command", 10)
        client.create_subscription(LocatedPoints, f"{ns}/locate_node/points", self.points.append, 10)
        self.LocateCommand = LocateCommand
        self.wait(lambda: all(p.get_subscription_count() for p in self.images.values())
                  and self.commands.get_subscription_count()
                  and client.count_publishers(f"{ns}/locate_node/points"), "matched endpoints")

    def wait(self, cond, what):
        spin_until(self.client, cond, what, timeout=TIMEOUT, proc=self.proc)

    def ask(self, request_id, query="red square", **kw):
        self.commands.publish(self.LocateCommand(request_id=request_id, query=query, **kw))

    def stream_until(self, cond, what, frame, topic="image"):
        """Publish `frame` on `topic` like a camera (every spin) until cond() holds."""
        import rclpy

        deadline = time.monotonic() + TIMEOUT
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            assert self.proc.poll() is None, f"the node died while waiting for {what}"
            self.images[topic].publish(frame)
            rclpy.spin_once(self.client, timeout_sec=0.05)

    def answers(self, request_id):
        return [p for p in self.points if p.request_id == request_id]


def test_every_bad_input_is_reported_and_the_next_good_frame_is_answered(client, tiny_checkpoint):
    """Unsupported encoding, inconsistent sizes, empty and oversized images, empty/oversized queries,
    unknown task and mode: each is logged, counted in /diagnostics, and the node answers the next
    good request on the next good frame."""
    from diagnostic_msgs.msg import DiagnosticArray

    ns = "/bad_inputs"
    proc = started_node(ns, tiny_checkpoint, "max_image_pixels:=10000", "max_query_chars:=100")
    try:
        activate(client, ns, proc)
        s = Session(client, ns, proc)
        diags = []
        client.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        rgb = load_npz("a_vision.npz")["image_rgb_uint8"]  # 84x56: under the 10000-pixel limit
        good = rgb_image(rgb, 1)

        def node_diag():
            for arr in reversed(diags):
                for st in arr.status:
                    if st.name.startswith(f"{ns}/locate_node"):
                        return {kv.key: kv.value for kv in st.values}
            return {}

        def reported(error):  # the diagnostics entry (logs are rate-limited, /diagnostics is not)
            return lambda: error in node_diag().get("last_error", "")

        def bad_image(**fields):
            msg = rgb_image(rgb, 2)
            for k, v in fields.items():
                setattr(msg, k, v)
            return msg

        big = rgb_image(np.zeros((100, 120, 3), np.uint8), 3)  # 12000 pixels
        bad_images = [
            (bad_image(encoding="bayer_rggb8"), "unsupported image encoding 'bayer_rggb8'"),
            (bad_image(data=rgb.tobytes()[:100]), "data has 100 bytes"),
            (bad_image(height=0, width=0, step=0, data=b""), "empty image (0x0)"),
            (big, "image 120x100 is larger than the limit of 10000 pixels"),
        ]
        for i, (msg, error) in enumerate(bad_images):
            s.ask(f"img{i}")
            s.stream_until(reported(error), f"the report of {error!r}", msg)
            s.stream_until(lambda: s.answers(f"img{i}"), f"img{i} answered on a good frame", good)
            assert s.answers(f"img{i}")[0].header.stamp.sec == 1  # the waiting request took the good frame

        bad_requests = [
            (dict(query=""), "query is empty"),
            (dict(query="x" * 101), "query is 101 characters long; the limit is 100"),
            (dict(task="segment"), "unknown task 'segment'"),
            (dict(mode="turbo"), "unknown decoding mode 'turbo'"),
        ]
        for i, (kw, error) in enumerate(bad_requests):
            s.ask(f"q{i}", **{"query": "red square", **kw})
            s.wait(reported(f"request q{i}: {error}"), f"the report of {error!r}")
        s.ask("after")
        s.stream_until(lambda: s.answers("after"), "the good request after the bad ones", good)
        assert not any(s.answers(f"q{i}") for i in range(len(bad_requests)))

        s.wait(lambda: int(node_diag().get("errors", 0)) >= len(bad_images) + len(bad_requests),
               "all errors counted in /diagnostics")
        assert node_diag()["last_error"] == "request q3: unknown decoding mode 'turbo'; choose one of slow, fast, hybrid"
        assert any("unsupported image encoding" in line for line in proc.log)  # the first of a kind is logged
        assert proc.poll() is None
    finally:
        stop_node(proc)


def test_cameras_are_selected_by_topic_or_frame_id(client, tiny_checkpoint):
    ns = "/cams"
    proc = started_node(ns, tiny_checkpoint, "extra_image_topics:=[right/image]")
    try:
        activate(client, ns, proc)
        s = Session(client, ns, proc, image_topics=("image", "right/image"))
        rgb = load_npz("a_vision.npz")["image_rgb_uint8"]
        left, right = rgb_image(rgb, 10, "left_optical"), rgb_image(rgb, 20, "right_optical")

        # `camera` = a topic: only that camera's frames answer it, however many others arrive
        s.ask("by_topic", camera="right/image")
        for _ in range(5):
            s.images["image"].publish(left)
        s.stream_until(lambda: s.answers("by_topic"), "an answer from the right camera", right, topic="right/image")
        assert s.answers("by_topic")[0].header.frame_id == "right_optical"
        # `camera` = a frame_id
        s.ask("by_frame", camera="left_optical")
        s.stream_until(lambda: s.answers("by_frame"), "an answer from left_optical", left, topic="image")
        assert s.answers("by_frame")[0].header.stamp.sec == 10
        # no camera: the default camera (`image_topic`) only
        s.ask("default")
        for _ in range(5):
            s.images["right/image"].publish(right)
        s.stream_until(lambda: s.answers("default"), "an answer from the default camera", left, topic="image")
        assert s.answers("default")[0].header.frame_id == "left_optical"
        assert all(len(s.answers(r)) == 1 for r in ("by_topic", "by_frame", "default"))
    finally:
        stop_node(proc)


def test_queue_policy_answers_every_frame_in_order(client, tiny_checkpoint):
    """frame_drop_policy=queue (bag replay): a burst of frames is processed in arrival order, none lost."""
    ns = "/queue"
    proc = started_node(ns, tiny_checkpoint, "frame_drop_policy:=queue", "frame_queue_depth:=30",
                        "image_reliable:=true", "image_qos_depth:=50")
    try:
        activate(client, ns, proc)
        s = Session(client, ns, proc, reliable_images=True)
        rgb = load_npz("a_vision.npz")["image_rgb_uint8"]
        s.ask("all", continuous=True)
        # the continuous command must be in before the burst: prove it with one answered frame
        s.stream_until(lambda: s.answers("all"), "the continuous command running", rgb_image(rgb, 1))
        for sec in range(100, 120):  # a burst far faster than the node answers
            s.images["image"].publish(rgb_image(rgb, sec))
        s.wait(lambda: {p.header.stamp.sec for p in s.answers("all")} >= set(range(100, 120)), "all 20 frames")
        stamps = [p.header.stamp.sec for p in s.answers("all") if p.header.stamp.sec >= 100]
        assert stamps == list(range(100, 120))  # in order, each once
    finally:
        stop_node(proc)
