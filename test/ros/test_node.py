"""locate_node in its own process, driven over real DDS (loopback) by this test process as a client."""
import subprocess
import threading
import time

import numpy as np
import pytest
from conftest import load_npz

from locate_ros.ros.client import change_state as client_change_state
from locate_ros.ros.client import spin_until as client_spin_until
from locate_ros.ros.client import rgb_image, start_node, stop_node

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("loopback_only")]
NS = "/t"
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def node_process(tiny_checkpoint):
    ros_args = ["-r", f"__ns:={NS}", "-p", f"model_path:={tiny_checkpoint}", "-p", "max_new_tokens:=24", "-p", "image_topic:=camera/image",
           "-p", "compressed_image_topic:=camera/image/compressed", "-p", "diagnostics_period_s:=0.2"]
    proc = start_node(*ros_args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.log = []  # the node's log lines, read as they come
    reader = threading.Thread(target=lambda: proc.log.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    yield proc
    stop_node(proc)
    reader.join(timeout=10)
    print("".join(proc.log))


def spin_until(node, cond, what, timeout=TIMEOUT):
    client_spin_until(node, cond, what, timeout)


def change_state(client, transition_id) -> bool:
    return client_change_state(client, f"{NS}/locate_node", transition_id)


def image_msg(rgb: np.ndarray, stamp_s: int, frame_id: str = "camera_optical", step=None):
    msg = rgb_image(rgb, stamp_s, frame_id, stamp_ns=500)
    msg.step = step or msg.step  # a wrong step makes the message inconsistent
    return msg


def test_lifecycle_one_shot_commands_and_bad_input(node_process, client):
    import rclpy
    from lifecycle_msgs.msg import Transition
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from locate_ros.msg import LocateCommand, LocatedPoints

    assert change_state(client, Transition.TRANSITION_CONFIGURE), "configure failed"
    assert change_state(client, Transition.TRANSITION_ACTIVATE), "activate failed"

    got_points, got_dets = [], []
    client.create_subscription(LocatedPoints, f"{NS}/locate_node/points", got_points.append, 10)
    client.create_subscription(Detection2DArray, f"{NS}/locate_node/detections", got_dets.append, 10)
    pub_img = client.create_publisher(Image, f"{NS}/camera/image", qos_profile_sensor_data)
    pub_cmd = client.create_publisher(LocateCommand, f"{NS}/locate_node/command", 10)
    spin_until(client, lambda: pub_img.get_subscription_count() and pub_cmd.get_subscription_count()
               and client.count_publishers(f"{NS}/locate_node/points"), "matched endpoints")
    rgb = load_npz("a_vision.npz")["image_rgb_uint8"]

    def ask(request_id, query="red square", **kw):
        pub_cmd.publish(LocateCommand(request_id=request_id, query=query, **kw))

    def stream_until(cond, what, frame):
        """Publish a frame like a camera would (every spin) until cond() holds."""
        deadline = time.monotonic() + TIMEOUT
        while not cond():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            pub_img.publish(frame)
            rclpy.spin_once(client, timeout_sec=0.1)

    def answered(request_id):
        return lambda: any(p.request_id == request_id for p in got_points)

    def answer(request_id):
        return next(p for p in got_points if p.request_id == request_id)

    # one-shot: answered on a frame that arrives after it, with that frame's header
    ask("r1")
    stream_until(answered("r1"), "answer r1", image_msg(rgb, 100))
    pts = answer("r1")
    assert (pts.header.stamp.sec, pts.header.stamp.nanosec, pts.header.frame_id) == (100, 500, "camera_optical")
    spin_until(client, lambda: len(got_dets) >= 1, "a Detection2DArray")
    assert got_dets[0].header.frame_id == "camera_optical" and got_dets[0].header.stamp.sec == 100
    # random weights find nothing: an empty array is still published, with the image's header
    assert len(got_dets[0].detections) == 0 and len(pts.points) == 0

    # bad input: an inconsistent image is dropped (the request waits for a good one), a bad query is
    # reported and skipped; the node stays up and answers the next good request
    ask("bad", query="   ")
    stream_until(lambda: any("request bad: query is empty" in line for line in node_process.log), "bad query report",
                 image_msg(rgb, 150))
    ask("r2")
    stream_until(lambda: any("step 10 is smaller" in line for line in node_process.log),
                 "bad image report", image_msg(rgb, 200, step=10))  # step < width*3: inconsistent
    stream_until(answered("r2"), "answer r2", image_msg(rgb, 201))
    assert answer("r2").header.stamp.sec == 201  # the request waited for the next good frame
    assert not any(p.request_id == "bad" for p in got_points)
    assert node_process.poll() is None, "the node died"

    # /diagnostics reports the counters and the last error
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

    diags = []
    client.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)

    def diag_values():
        for arr in reversed(diags):
            for st in arr.status:
                if st.name.startswith(f"{NS}/locate_node"):
                    return {kv.key: kv.value for kv in st.values} | {"_level": st.level}
        return None

    spin_until(client, lambda: (diag_values() or {}).get("frames_processed", "0") not in ("0", "1"), "diagnostics")
    d = diag_values()
    assert int(d["errors"]) >= 2 and ("image dropped" in d["last_error"] or "query is empty" in d["last_error"])
    assert d["_level"] == DiagnosticStatus.WARN  # serving, with an error seen
    assert d["device"] == "cpu" and d["mode"] == "hybrid" and float(d["latency_ms"]) > 0
    assert d["hybrid_rule"] == "reference"  # the golden tiny checkpoint declares no rule of its own

    # the debug image is rendered (with the frame's header) once someone subscribes to it
    debug = []
    client.create_subscription(Image, f"{NS}/locate_node/debug_image", debug.append, 1)
    spin_until(client, lambda: client.count_subscribers(f"{NS}/locate_node/debug_image") >= 1, "debug subscriber")
    ask("r5")
    stream_until(lambda: any(m.header.stamp.sec == 600 for m in debug), "debug image", image_msg(rgb, 600))
    m = next(m for m in debug if m.header.stamp.sec == 600)
    assert (m.width, m.height, m.encoding, m.header.frame_id) == (84, 56, "rgb8", "camera_optical")

    # CompressedImage input (png here; jpeg the same way)
    import io

    from PIL import Image as PILImage
    from sensor_msgs.msg import CompressedImage

    pub_jpg = client.create_publisher(CompressedImage, f"{NS}/camera/image/compressed", qos_profile_sensor_data)
    spin_until(client, lambda: pub_jpg.get_subscription_count() >= 1, "compressed subscriber")
    bio = io.BytesIO()
    PILImage.fromarray(rgb).save(bio, format="PNG")
    comp = CompressedImage(format="png", data=bio.getvalue())
    comp.header.stamp.sec, comp.header.frame_id = 700, "camera_optical"
    ask("c0", continuous=True)  # continuous, so a leftover raw frame cannot take the answer
    deadline = time.monotonic() + TIMEOUT
    while not any(p.request_id == "c0" and p.header.stamp.sec == 700 for p in got_points):
        assert time.monotonic() < deadline, "no answer on the compressed frame"
        pub_jpg.publish(comp)
        rclpy.spin_once(client, timeout_sec=0.1)
    ask("", query="", continuous=True)  # clear

    # continuous: every new frame is answered until the command is cleared
    ask("c1", continuous=True)
    stamps = set()
    for sec in range(300, 303):
        stream_until(lambda: any(p.request_id == "c1" and p.header.stamp.sec == sec for p in got_points),
                     f"continuous answer on frame {sec}", image_msg(rgb, sec))
        stamps.add(sec)
    ask("", query="", continuous=True)  # clears c1 (same ordered command topic as r3 below)
    ask("r3")
    stream_until(answered("r3"), "answer r3", image_msg(rgb, 400))
    ask("r4")  # answers on one topic arrive in order: once r4 is here, any c1 answer to 400+ would be too
    stream_until(answered("r4"), "answer r4", image_msg(rgb, 500))
    assert stamps == {300, 301, 302}
    assert not any(p.request_id == "c1" and p.header.stamp.sec >= 400 for p in got_points)

    assert change_state(client, Transition.TRANSITION_DEACTIVATE)
    assert change_state(client, Transition.TRANSITION_CLEANUP)


def test_parameters_file_is_read_and_a_bad_checkpoint_fails_configure_without_killing_the_node(client, tmp_path):
    """The YAML profile loads; a model_path that is no checkpoint makes configure fail, the node stays up."""
    from pathlib import Path

    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import GetState

    params = Path(__file__).resolve().parents[2] / "config" / "cpu_demo.yaml"
    proc = start_node("-r", "__ns:=/bad", "--params-file", str(params), "-p", f"model_path:={tmp_path}",
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert client_change_state(client, "/bad/locate_node", Transition.TRANSITION_CONFIGURE, proc=proc) is False
        get = client.create_client(GetState, "/bad/locate_node/get_state")
        spin_until(client, get.service_is_ready, "get_state")
        fut = get.call_async(GetState.Request())
        spin_until(client, fut.done, "get_state")
        assert fut.result().current_state.label == "unconfigured" and proc.poll() is None
    finally:
        stop_node(proc)
    out = proc.stdout.read()
    assert "cannot configure with model" in out and "config.json" in out


def test_hybrid_rule_is_the_checkpoints_unless_a_parameter_sets_it(client, tiny_checkpoint, tmp_path):
    """hybrid.* left unset take the checkpoint's generation_config.json values; one set with -p replaces
    it; the node logs where each came from. A bad declaration fails configure and the node stays up."""
    import json
    import shutil

    from lifecycle_msgs.msg import Transition

    ckpt = shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")
    gen = ckpt / "generation_config.json"
    config = json.loads(gen.read_text()) if gen.exists() else {}
    gen.write_text(json.dumps({**config, "hybrid_thresholds": {"ambiguous_top_k": 16, "ambiguous_prob": 0.25}}))
    proc = start_node("-r", "__ns:=/rule", "-p", f"model_path:={ckpt}", "-p", "hybrid.ambiguous_prob:=0.5",
                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # reply_timeout=0: the client stops waiting for each first reply at once, as it does when a reply is
    # lost (a DDS race it must survive), and goes on to ask the node's state; whichever answer comes
    # first (the late reply, or the state, and then a second request) must give the same outcome
    try:
        assert client_change_state(client, "/rule/locate_node", Transition.TRANSITION_CONFIGURE, proc=proc,
                                   reply_timeout=0)
        # configure again from inactive (a retry, `ros2 lifecycle set` twice): refused, and the node lives on
        # (rclpy's own service callback raises out of spin here and ends the process)
        assert client_change_state(client, "/rule/locate_node", Transition.TRANSITION_CONFIGURE, proc=proc) is False
        assert proc.poll() is None
        assert client_change_state(client, "/rule/locate_node", Transition.TRANSITION_CLEANUP, proc=proc,
                                   reply_timeout=0)
        gen.write_text(json.dumps({**config, "hybrid_thresholds": {"ambiguous_top_k": -3}}))
        assert client_change_state(client, "/rule/locate_node", Transition.TRANSITION_CONFIGURE, proc=proc,
                                   reply_timeout=0) is False
        assert proc.poll() is None
    except BaseException:
        stop_node(proc)
        print(proc.stdout.read())  # the node's log, for the failure report
        raise
    finally:
        stop_node(proc)
    out = proc.stdout.read()
    assert "transition 1 is not available from state 'inactive'" in out, out
    assert "fallback rule differs from the reference's: ambiguous_prob=0.5 (parameter), ambiguous_top_k=16 (checkpoint)" \
        in out, out
    assert "cannot configure" in out and "generation_config.json" in out and "ambiguous_top_k must be >= 0" in out, out
