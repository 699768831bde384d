"""What locate_node adds around the model: conversion, message building and publishing.

One run, one JSON. The node runs in its own process (CPU profile, the tiny checkpoint with
max_new_tokens 1 so that the model is fast and excluded from the node's figures anyway); this
process publishes 640x480 and then 1920x1080 rgb8 frames at 30 Hz (reliable QoS: over loopback
without a shared-memory transport, best-effort 1080p frames are mostly lost in DDS, which would
measure Fast DDS, not the node) with a continuous command, then reads the node's /diagnostics:
mean conversion / model / publish milliseconds per frame, frames received / processed / dropped
(processed + dropped + skipped must equal received: no queue), and the node's RSS after each 1000 frames.

  LOCATE_ROS_LOCALHOST=1 source scripts/ros_env.sh && python bench/node_latency.py [--frames 1000]
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
HANDLED = ("frames_processed", "frames_dropped", "frames_skipped")  # every received frame ends as one of these


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=30.0)
    args = ap.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(1, 101)))

    import numpy as np
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from lifecycle_msgs.msg import Transition
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from locate_ros.msg import LocateCommand
    from locate_ros.ros.client import change_state, spin_until, start_node, stop_node

    node = start_node("--params-file", str(ROOT / "config" / "cpu_demo.yaml"), "-r", "__ns:=/bench",
                      "-p", "max_new_tokens:=1", "-p", "image_reliable:=true", "-p", "debug_image:=false",
                      "-p", "diagnostics_period_s:=0.25", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    me = rclpy.create_node("node_latency_bench")
    diags = []

    def wait(cond, what):
        spin_until(me, cond, what, proc=node)

    def latest(after_ns: int = 0):
        """The node's newest diagnostics values, from a report stamped after `after_ns` (or {})."""
        for arr in reversed(diags):
            stamp = arr.header.stamp.sec * 10**9 + arr.header.stamp.nanosec
            for st in arr.status:
                if st.name.startswith("/bench/locate_node") and stamp > after_ns:
                    return {kv.key: kv.value for kv in st.values}
        return {}

    out = {"bench": "node_latency", "rate_hz": args.rate, "frames_per_size": args.frames, "qos": "reliable",
           "model": "tiny random checkpoint, max_new_tokens=1 (model time reported separately)", "sizes": {}}
    try:
        for tid in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert change_state(me, "/bench/locate_node", tid, proc=node), f"transition {tid} failed"
        me.create_subscription(DiagnosticArray, "/diagnostics", diags.append, 10)
        pub = me.create_publisher(Image, "/bench/image", QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE))
        cmd = me.create_publisher(LocateCommand, "/bench/locate_node/command", 10)
        wait(lambda: pub.get_subscription_count() and cmd.get_subscription_count(), "matched topics")
        cmd.publish(LocateCommand(request_id="bench", query="object", continuous=True))
        rss_start = rss_mb(node.pid)
        sent_total = 0
        for w, h in ((640, 480), (1920, 1080)):
            frame = Image(height=h, width=w, encoding="rgb8", step=w * 3)
            frame.data = np.random.default_rng(0).integers(0, 256, size=h * w * 3, dtype=np.uint8).tobytes()
            before = {k: float(v) for k, v in latest().items() if k.endswith("_ms_mean") or k.startswith("frames_")}
            rss_before = rss_mb(node.pid)
            rss_trace = []
            t0 = time.monotonic()
            for i in range(args.frames):
                frame.header.stamp = me.get_clock().now().to_msg()
                pub.publish(frame)
                sent_total += 1
                if (i + 1) % (args.frames // 4 or 1) == 0:
                    rss_trace.append(round(rss_mb(node.pid), 1))
                t_next = t0 + (i + 1) / args.rate
                while time.monotonic() < t_next:
                    rclpy.spin_once(me, timeout_sec=max(0.0, t_next - time.monotonic()))
            # settled: the node has handled everything it received (DDS may have replaced frames in
            # flight: reliable KEEP_LAST 1 delivers the newest, which is what a camera consumer wants)
            sent_ns = me.get_clock().now().nanoseconds

            def settled():  # a report made after the last frame was sent, with nothing left in hand
                v = latest(sent_ns)
                return v and sum(float(v[k]) for k in HANDLED) >= float(v["frames_received"])
            wait(settled, "the node to finish the last frame")
            d = {k: float(v) for k, v in latest(sent_ns).items() if k.endswith("_ms_mean") or k.startswith("frames_")}
            n_proc = d["frames_processed"] - before.get("frames_processed", 0)

            def stage_ms(k):  # mean over this size's frames only (the node keeps running means)
                tot = d[f"{k}_ms_mean"] * d["frames_processed"] - before.get(f"{k}_ms_mean", 0) * before.get("frames_processed", 0)
                return round(tot / max(n_proc, 1), 3)

            conv, pub_ms, model = stage_ms("convert"), stage_ms("publish"), stage_ms("model")
            out["sizes"][f"{w}x{h}"] = {
                "frames_sent": args.frames,
                "frames_lost_in_dds": int(args.frames - (d["frames_received"] - before.get("frames_received", 0))), "wall_s": round(time.monotonic() - t0, 2),
                "frames_received": int(d["frames_received"] - before.get("frames_received", 0)),
                "frames_processed": int(n_proc),
                "frames_dropped": int(d["frames_dropped"] - before.get("frames_dropped", 0)),
                "frames_skipped": int(d["frames_skipped"] - before.get("frames_skipped", 0)),
                "node_overhead_ms": round(conv + pub_ms, 3), "convert_ms": conv, "publish_ms": pub_ms,
                "model_ms": model, "node_rss_mb_before": round(rss_before, 1), "node_rss_mb_every_quarter": rss_trace,
            }
            print(f"# {w}x{h}: {out['sizes'][f'{w}x{h}']}", file=sys.stderr, flush=True)
        out["queue_growth"] = int(float(latest()["frames_received"]) - sum(float(latest()[k]) for k in HANDLED))
        out["node_rss_mb_start"] = round(rss_start, 1)
    finally:
        me.destroy_node()
        rclpy.shutdown()
        stop_node(node)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
