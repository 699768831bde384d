"""Best-effort camera frames across two processes: how many arrive, per Fast DDS transport profile.

One run, one JSON. For each profile (Fast DDS as rmw_fastrtps sets it up, then with
config/fastdds_shm.xml) and each image size, a subscriber process (SensorDataQoS, like
locate_node) counts the frames this process publishes at `--rate` Hz; the ratio received/sent
is the figure. Both processes stay on loopback (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST); the
JSON also carries the packet count that left through non-loopback interfaces during the run
(/proc/net/dev), which must stay at what background traffic sends.

  LOCATE_ROS_LOCALHOST=1 source scripts/ros_env.sh && python bench/dds_transport.py [--frames 150]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILES = {"rmw_default": None, "shm_profile": ROOT / "config" / "fastdds_shm.xml"}
SIZES = {"640x480": (480, 640), "1920x1080": (1080, 1920)}

# The subscriber: counts frames; after the reliable "done" it repeats its count until acknowledged.
SUBSCRIBER = r"""
import rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import UInt32
rclpy.init()
n = rclpy.create_node("transport_sink")
got, done, ack = [0], [], []
n.create_subscription(Image, "/transport/image", lambda m: got.__setitem__(0, got[0] + 1), qos_profile_sensor_data)
n.create_subscription(UInt32, "/transport/done", done.append, 10)
n.create_subscription(UInt32, "/transport/ack", ack.append, 10)
out = n.create_publisher(UInt32, "/transport/count", 10)
while not done:
    rclpy.spin_once(n, timeout_sec=0.1)
while not ack:
    out.publish(UInt32(data=got[0]))
    rclpy.spin_once(n, timeout_sec=0.1)
"""


def external_tx_packets() -> int:
    total = 0
    for line in Path("/proc/net/dev").read_text().splitlines()[2:]:
        name, data = line.split(":", 1)
        if name.strip() != "lo":
            total += int(data.split()[9])
    return total


def run_case(hw: tuple[int, int], frames: int, rate: float) -> dict:
    import numpy as np
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import UInt32

    from locate_ros.ros.client import spin_until

    sink = subprocess.Popen([sys.executable, "-c", SUBSCRIBER])
    rclpy.init()
    me = rclpy.create_node("transport_source")
    try:
        pub = me.create_publisher(Image, "/transport/image", qos_profile_sensor_data)
        done = me.create_publisher(UInt32, "/transport/done", 10)
        ack = me.create_publisher(UInt32, "/transport/ack", 10)
        counts = []
        me.create_subscription(UInt32, "/transport/count", counts.append, 10)
        spin_until(me, lambda: pub.get_subscription_count() and done.get_subscription_count()
                   and ack.get_subscription_count(), "matched sink", proc=sink)
        h, w = hw
        msg = Image(height=h, width=w, encoding="rgb8", step=w * 3)
        msg.data = np.random.default_rng(0).integers(0, 255, (h, w, 3), np.uint8).tobytes()
        tx0, t0 = external_tx_packets(), time.perf_counter()
        for i in range(frames):
            t_next = t0 + (i + 1) / rate
            msg.header.stamp = me.get_clock().now().to_msg()
            pub.publish(msg)
            while time.perf_counter() < t_next:
                rclpy.spin_once(me, timeout_sec=max(0.0, t_next - time.perf_counter()))
        done.publish(UInt32(data=frames))
        spin_until(me, lambda: counts, "the sink's count", proc=sink)
        ack.publish(UInt32(data=1))
        sink.wait(timeout=30)
        return {"sent": frames, "received": counts[-1].data, "ratio": counts[-1].data / frames,
                "non_loopback_tx_packets": external_tx_packets() - tx0}
    finally:
        if sink.poll() is None:
            sink.kill()
        me.destroy_node()
        rclpy.shutdown()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--profile", choices=sorted(PROFILES), help="(internal) run one profile in this process")
    args = ap.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))
    if args.profile:  # Fast DDS reads its XML profile once per process: one process per profile
        print(json.dumps({size: run_case(hw, args.frames, args.rate) for size, hw in SIZES.items()}))
        return
    results = {}
    for name, profile in PROFILES.items():
        env = {k: v for k, v in os.environ.items() if k != "FASTRTPS_DEFAULT_PROFILES_FILE"}
        if profile is not None:
            env["FASTRTPS_DEFAULT_PROFILES_FILE"] = str(profile)
        out = subprocess.run([sys.executable, __file__, "--profile", name, "--frames", str(args.frames),
                              "--rate", str(args.rate)], env=env, check=True, capture_output=True, text=True)
        results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    summary = {"bench": "dds_transport", "frames": args.frames, "rate_hz": args.rate,
               "discovery_range": os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"], "results": results,
               "shm_over_default_1080p": results["shm_profile"]["1920x1080"]["ratio"]
               / max(results["rmw_default"]["1920x1080"]["ratio"], 1e-9)}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
