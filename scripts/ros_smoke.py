#!/usr/bin/env python3
"""Two-process ROS 2 smoke test for the pip route (run inside `source scripts/ros_env.sh`).

    python scripts/ros_smoke.py [--timeout 30]

The parent picks a random ROS_DOMAIN_ID, sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (loopback only)
and starts two child processes of this script:
  sub: subscribes to locate_ros/LocateCommand and vision_msgs/Detection2DArray, waits until each
       subscription has a matched publisher and a message arrived (deadline, no fixed sleeps),
       prints the RIHS01 type hash of Detection2DArray seen on the graph, and exits 0;
  pub: waits until each publisher has a matched subscription, publishes one message on each, and
       stays alive (spinning) until the parent closes its stdin, so reliable delivery can finish.
Exit status 0 only when the subscriber got both messages with the expected content.
"""
import argparse
import os
import random
import select
import subprocess
import sys
import time

CMD_TOPIC = "/locate_ros_smoke/command"
DET_TOPIC = "/locate_ros_smoke/detections"


def _ros():
    import rclpy
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                     reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)
    return rclpy, qos


def _spin_until(rclpy, node, cond, deadline, what):
    while not cond():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out waiting for {what}")
        rclpy.spin_once(node, timeout_sec=min(0.05, left))


def role_sub(timeout):
    rclpy, qos = _ros()
    from vision_msgs.msg import Detection2DArray

    from locate_ros.msg import LocateCommand

    rclpy.init()
    node = rclpy.create_node("locate_ros_smoke_sub")
    got = {}
    subs = [
        node.create_subscription(LocateCommand, CMD_TOPIC, lambda m: got.setdefault("cmd", m), qos),
        node.create_subscription(Detection2DArray, DET_TOPIC, lambda m: got.setdefault("det", m), qos),
    ]
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    print("sub: ready", flush=True)
    _spin_until(rclpy, node, lambda: all(s.get_publisher_count() >= 1 for s in subs), deadline, "matched publishers")
    print(f"sub: matched publishers after {time.monotonic() - t0:.2f} s", flush=True)
    _spin_until(rclpy, node, lambda: "cmd" in got and "det" in got, deadline, "both messages")
    print(f"sub: both messages after {time.monotonic() - t0:.2f} s", flush=True)
    cmd, det = got["cmd"], got["det"]
    assert cmd.query == "red cup" and list(cmd.categories) == ["cup", "mug"] and cmd.continuous, cmd
    d = det.detections[0]
    assert det.header.frame_id == "camera_optical" and d.results[0].hypothesis.class_id == "red cup", det
    assert abs(d.bbox.center.position.x - 320.0) < 1e-9 and abs(d.results[0].hypothesis.score - 0.875) < 1e-9, det
    print(f"sub: LocateCommand ok (request_id={cmd.request_id!r}, query={cmd.query!r}, categories={list(cmd.categories)})",
          flush=True)
    print(f"sub: Detection2DArray ok ({len(det.detections)} detection, class_id={d.results[0].hypothesis.class_id!r}, "
          f"bbox centre=({d.bbox.center.position.x}, {d.bbox.center.position.y}), size=({d.bbox.size_x}, {d.bbox.size_y}))",
          flush=True)
    for topic in (DET_TOPIC, CMD_TOPIC):
        for info in node.get_publishers_info_by_topic(topic):
            h = getattr(info, "topic_type_hash", None)
            print(f"sub: type hash {info.topic_type}: {h if h is not None else '(not exposed by this rclpy)'}", flush=True)
    node.destroy_node()
    rclpy.shutdown()
    print("sub: OK", flush=True)
    return 0


def role_pub(timeout):
    rclpy, qos = _ros()
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    from locate_ros.msg import LocateCommand

    rclpy.init()
    node = rclpy.create_node("locate_ros_smoke_pub")
    pub_cmd = node.create_publisher(LocateCommand, CMD_TOPIC, qos)
    pub_det = node.create_publisher(Detection2DArray, DET_TOPIC, qos)
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    _spin_until(rclpy, node, lambda: pub_cmd.get_subscription_count() >= 1 and pub_det.get_subscription_count() >= 1,
                deadline, "matched subscriptions")
    print(f"pub: matched subscriptions after {time.monotonic() - t0:.2f} s", flush=True)

    cmd = LocateCommand(request_id="smoke-1", query="red cup", categories=["cup", "mug"], task="detect",
                        mode="box", continuous=True, camera="front")
    cmd.header.stamp = node.get_clock().now().to_msg()
    cmd.header.frame_id = "camera_optical"
    det = Detection2DArray()
    det.header = cmd.header
    d = Detection2D()
    d.header = cmd.header
    d.id = "0"
    d.bbox.center.position.x, d.bbox.center.position.y = 320.0, 240.0
    d.bbox.size_x, d.bbox.size_y = 64.0, 48.0
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id, hyp.hypothesis.score = "red cup", 0.875
    d.results.append(hyp)
    det.detections.append(d)
    pub_cmd.publish(cmd)
    pub_det.publish(det)
    print("pub: published both", flush=True)
    # keep the writer alive (and answering acknacks) until the parent says done (stdin closes)
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], 0.0)
        if r and not sys.stdin.read(1):
            break
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.shutdown()
    print("pub: done", flush=True)
    return 0


def parent(timeout):
    env = dict(os.environ)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # loopback only (tests, CI, demos)
    env["ROS_DOMAIN_ID"] = str(random.randint(1, 101))  # 0..101 are safe with the default port mapping
    env["PYTHONUNBUFFERED"] = "1"
    print(f"smoke: ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']} ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST "
          f"RMW_IMPLEMENTATION={env.get('RMW_IMPLEMENTATION', '(default)')}", flush=True)
    t0 = time.monotonic()
    me = [sys.executable, os.path.abspath(__file__), "--timeout", str(timeout), "--role"]
    sub = subprocess.Popen(me + ["sub"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # start the publisher only after the subscriber process is up (its node exists)
    line = sub.stdout.readline()
    print("  " + line.rstrip(), flush=True)
    pub = subprocess.Popen(me + ["pub"], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        for line in sub.stdout:
            print("  " + line.rstrip(), flush=True)
        rc_sub = sub.wait(timeout=timeout)
    finally:
        try:
            out, _ = pub.communicate(timeout=timeout)  # closes its stdin: tells the publisher to finish
        except subprocess.TimeoutExpired:
            pub.kill()
            out, _ = pub.communicate()
        for line in out.splitlines():
            print("  " + line, flush=True)
        if sub.poll() is None:
            sub.kill()
    ok = rc_sub == 0 and pub.returncode == 0
    print(f"smoke: {'PASS' if ok else 'FAIL'} (sub rc={rc_sub}, pub rc={pub.returncode}) in "
          f"{time.monotonic() - t0:.2f} s", flush=True)
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--role", choices=["sub", "pub"])
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()
    if a.role:
        # never run a ROS process of this script off loopback
        assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST", "ROS_AUTOMATIC_DISCOVERY_RANGE must be LOCALHOST"
        assert os.environ.get("ROS_DOMAIN_ID"), "ROS_DOMAIN_ID must be set"
        return role_sub(a.timeout) if a.role == "sub" else role_pub(a.timeout)
    return parent(a.timeout)


if __name__ == "__main__":
    sys.exit(main())
