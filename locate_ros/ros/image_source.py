"""image_source: a camera stand-in that publishes image files as sensor_msgs/Image at a fixed rate.

For demos, the launch variant that brings its own images (launch/locate_with_image_source.launch.py)
and quick checks without a camera. `path` is an image file or a directory (its png/jpg/jpeg/bmp
files, in name order, cycled); empty = the bundled 84x56 test image. Frames are rgb8, stamped with
the publishing time and `frame_id`, on `image` with SensorDataQoS (as camera drivers publish).

    python -m locate_ros.ros.image_source --ros-args -p path:=/data/frames -p rate_hz:=5.0
"""
from __future__ import annotations

import itertools
from pathlib import Path

import rclpy
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from .client import rgb_image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def image_files(path: str) -> list[Path]:
    """The files `path` names (one file, or a directory's images in name order); the bundled image for ''."""
    if not path:
        from ..testing.tiny import golden_dir

        return [golden_dir() / "image_84x56.png"]
    p = Path(path)
    files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise FileNotFoundError(f"image_source: no image files at {path!r}")
    return files


class ImageSource(Node):
    def __init__(self, **kwargs):
        super().__init__("image_source", **kwargs)
        path = self.declare_parameter("path", "").value
        rate = self.declare_parameter("rate_hz", 2.0).value
        self.frame_id = self.declare_parameter("frame_id", "camera_optical").value
        from ..cli import load_image

        # decoded once: a camera stand-in should cost nothing per frame
        self.frames = [load_image(str(f))[..., :3] for f in image_files(path)]
        self.pub = self.create_publisher(Image, "image", qos_profile_sensor_data)
        self.next_frame = itertools.cycle(self.frames)
        self.published = 0
        self.create_timer(1.0 / rate, self._publish)
        self.get_logger().info(f"publishing {len(self.frames)} image(s) from {path or 'the bundled test image'} "
                               f"at {rate} Hz on {self.pub.topic_name}")

    def _publish(self):
        msg = rgb_image(next(self.next_frame), frame_id=self.frame_id)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub.publish(msg)
        self.published += 1


def main(args=None):
    rclpy.init(args=args)
    try:
        node = ImageSource()
    except (FileNotFoundError, SystemExit) as e:
        print(e)
        rclpy.shutdown()
        raise SystemExit(2)
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
