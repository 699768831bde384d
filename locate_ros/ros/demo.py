"""The main job on a CPU: locate_node in its own process, fed by a camera-like image publisher.

    LOCATE_ROS_LOCALHOST=1 source scripts/ros_env.sh && python -m locate_ros.ros.demo [--frames 5]

Publishes the bundled test image at `--rate` Hz with a continuous command, prints every answer, and
saves the node's annotated debug image. Without `--model` the node uses the bundled demo checkpoint
(locate_ros/demo_model, a small model trained on the data engine) and, on the demo scene, scores its
last answer against the ground truth.
Stays on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, a random ROS_DOMAIN_ID) unless told
otherwise by the environment.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

from ..processing import TASKS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="locate_ros.ros.demo", description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="", help="checkpoint directory (default: the bundled demo checkpoint)")
    ap.add_argument("--image", default="", help="image file (default: the demo scene of the data engine)")
    ap.add_argument("--query", action="append", default=[], help="text; repeat for several categories "
                    "(default: the demo scene's question)")
    ap.add_argument("--task", default="", choices=["", *sorted(TASKS)],
                    help="the command's task (default: the node's, detect); `point` asks for one point per instance")
    ap.add_argument("--frames", type=int, default=5)
    ap.add_argument("--rate", type=float, default=2.0)
    ap.add_argument("--out", default="locate_demo_debug.png", help="where to save the last annotated frame")
    args = ap.parse_args(argv)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))

    import rclpy
    from lifecycle_msgs.msg import Transition
    from PIL import Image as PILImage
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2DArray

    from ..cli import demo_scene, load_image
    from ..msg import LocateCommand, LocatedPoints
    from .client import change_state, rgb_image, spin_until, start_node, stop_node

    scene = demo_scene()
    rgb = load_image(args.image)[..., :3] if args.image else scene.image
    queries = args.query or ([scene.query] if isinstance(scene.query, str) else list(scene.query))
    if not args.image:
        for t in scene.targets:
            print(f"demo: ground truth {t.label!r}: " + (", ".join(f"({x1:.0f}, {y1:.0f})-({x2:.0f}, {y2:.0f})"
                                                                   for x1, y1, x2, y2 in t.boxes) or "absent"))
    params = Path(__file__).resolve().parents[2] / "config" / "cpu_demo.yaml"
    ros_args = ["--params-file", str(params), "-r", "__ns:=/demo"]
    if args.model:  # else the profile's empty model_path: the bundled demo checkpoint
        ros_args += ["-p", f"model_path:={args.model}"]
    print(f"demo: ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']} "
          f"ROS_AUTOMATIC_DISCOVERY_RANGE={os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE']}", flush=True)
    node_proc = start_node(*ros_args)
    rclpy.init()
    me = rclpy.create_node("locate_demo")
    answers, debug = [], []

    def wait(cond, what):
        spin_until(me, cond, what, proc=node_proc)

    try:
        for tid, name in ((Transition.TRANSITION_CONFIGURE, "configure"), (Transition.TRANSITION_ACTIVATE, "activate")):
            if not change_state(me, "/demo/locate_node", tid, proc=node_proc):
                raise RuntimeError(f"demo: {name} failed (see the node's log above)")
        me.create_subscription(Detection2DArray, "/demo/locate_node/detections",
                               lambda m: answers.append(("boxes", m)), 10)
        me.create_subscription(LocatedPoints, "/demo/locate_node/points", lambda m: answers.append(("points", m)), 10)
        me.create_subscription(Image, "/demo/locate_node/debug_image", debug.append, 1)
        pub_img = me.create_publisher(Image, "/demo/image", qos_profile_sensor_data)
        pub_cmd = me.create_publisher(LocateCommand, "/demo/locate_node/command", 10)
        wait(lambda: pub_img.get_subscription_count() and pub_cmd.get_subscription_count(), "matched topics")
        command = LocateCommand(request_id="demo", continuous=True, task=args.task)
        if len(queries) == 1:
            command.query = queries[0]
        else:
            command.categories = queries
        pub_cmd.publish(command)
        frame = rgb_image(rgb, frame_id="demo_camera")
        for i in range(args.frames):
            n = len(answers)
            # like a camera: a new frame every 1/rate s until this one is answered (a request is answered
            # on frames that arrive after it, and DDS may deliver the first frame before the command)
            while len(answers) < n + 2:
                frame.header.stamp = me.get_clock().now().to_msg()
                pub_img.publish(frame)
                t_next = time.monotonic() + 1.0 / args.rate
                while len(answers) < n + 2 and time.monotonic() < t_next:
                    rclpy.spin_once(me, timeout_sec=max(0.0, t_next - time.monotonic()))
                if node_proc.poll() is not None:
                    raise RuntimeError(f"demo: the node exited (code {node_proc.returncode})")
            answers[n + 2:] = []  # answers to extra frames of this round are not printed twice
            for kind, m in answers[n:]:
                items = m.detections if kind == "boxes" else m.points
                print(f"frame {i} stamp {m.header.stamp.sec}.{m.header.stamp.nanosec:09d} {kind}: {len(items)}"
                      + "".join(f"\n  {x.results[0].hypothesis.class_id} score {x.results[0].hypothesis.score:.2f} "
                                f"centre ({x.bbox.center.position.x:.1f}, {x.bbox.center.position.y:.1f}) size "
                                f"{x.bbox.size_x:.1f}x{x.bbox.size_y:.1f}" if kind == "boxes" else
                                f"\n  {x.label} ({x.x:.1f}, {x.y:.1f}) score {x.score:.2f}" for x in items), flush=True)
        if debug:
            d = debug[-1]
            PILImage.frombytes("RGB", (d.width, d.height), bytes(d.data)).save(args.out)
            print(f"demo: annotated frame saved to {args.out}", flush=True)
        if not args.image:  # the demo scene has ground truth: score the last answer as the paper does
            import numpy as np

            from ..evaluation import dense_f1, point_hit_rate

            gt = np.array([b for t in scene.targets for b in t.boxes]).reshape(-1, 4)
            if args.task in ("point", "gui_point"):  # a hit: a point inside a square, one point per square
                last = next(m for kind, m in reversed(answers) if kind == "points")
                hits = point_hit_rate([[(p.x, p.y) for p in last.points]], [gt])
                print(f"demo: last answer vs ground truth: point hit rate {hits.hit_rate:.2f} "
                      f"({len(last.points)} points, {len(gt)} true)", flush=True)
                return 0
            last = next(m for kind, m in reversed(answers) if kind == "boxes")
            pred = np.array([[x.bbox.center.position.x - x.bbox.size_x / 2, x.bbox.center.position.y - x.bbox.size_y / 2,
                              x.bbox.center.position.x + x.bbox.size_x / 2, x.bbox.center.position.y + x.bbox.size_y / 2]
                             for x in last.detections]).reshape(-1, 4)
            f1 = dense_f1([pred], [gt])
            print(f"demo: last answer vs ground truth: F1@0.5 {f1.f1_50:.2f}, mean F1 (IoU 0.50:0.95) "
                  f"{f1.mean_f1:.2f} ({len(pred)} boxes, {len(gt)} true)", flush=True)
        return 0
    finally:
        me.destroy_node()
        rclpy.shutdown()
        stop_node(node_proc)


if __name__ == "__main__":
    sys.exit(main())
