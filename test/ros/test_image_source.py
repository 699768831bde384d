"""image_source (the camera stand-in of the launch variant) in its own process, received over DDS."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image as PILImage

from locate_ros.ros.client import spin_until, stop_node

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("loopback_only")]


def source_process(*params):
    args = [sys.executable, "-m", "locate_ros.ros.image_source", "--ros-args", "-r", "__ns:=/src"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_image_source_cycles_a_directory_with_stamps_and_frame_id(tmp_path):
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 255, (20, 30, 3), np.uint8), rng.integers(0, 255, (12, 16, 3), np.uint8)
    PILImage.fromarray(a).save(tmp_path / "a.png")
    PILImage.fromarray(b).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("not an image")
    proc = source_process(f"path:={tmp_path}", "rate_hz:=50.0", "frame_id:=test_cam")
    rclpy.init()
    node = rclpy.create_node("image_source_test")
    try:
        got = []
        node.create_subscription(Image, "/src/image", got.append, qos_profile_sensor_data)
        spin_until(node, lambda: len({m.width for m in got}) == 2 and len(got) >= 4, "both images", proc=proc)
        by_width = {m.width: m for m in got}
        for arr in (a, b):
            m = by_width[arr.shape[1]]
            assert (m.height, m.encoding, m.header.frame_id) == (arr.shape[0], "rgb8", "test_cam")
            assert np.array_equal(np.frombuffer(bytes(m.data), np.uint8).reshape(arr.shape), arr)
        stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for m in got]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)  # fresh, increasing stamps
    finally:
        node.destroy_node()
        rclpy.shutdown()
        stop_node(proc)


def test_image_source_refuses_a_path_without_images(tmp_path):
    proc = source_process(f"path:={tmp_path}")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "no image files" in out
