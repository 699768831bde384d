"""locate_node: a lifecycle node that grounds language commands in the newest camera frame.

Thin by design: messages in and out, a newest-frame slot and one worker thread; all model work is
`Locator` (plain Python). The model loads on configure and is released on cleanup; the prompt is
encoded once per command (Locator caches it). Bad input is logged (throttled) and counted, and the
node goes on with the next good input.

    python -m locate_ros.ros.node --ros-args --params-file config/cpu_demo.yaml
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Optional

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from ..msg import LabeledPoint, LocateCommand, LocatedPoints
from .conversions import ImageConversionError, compressed_to_rgb, image_msg_to_rgb

PARAMS = {  # name: default (the YAML files under config/ set these)
    "model_path": "",  # checkpoint directory; "" = the bundled tiny CPU demo checkpoint
    "device": "cpu",
    "dtype": "",  # "" = float32 on CPU, bfloat16 on GPU
    "mode": "hybrid",  # slow | fast | hybrid
    "default_task": "detect",
    "max_new_tokens": 1024,
    "max_boxes": 200,
    "max_time_s": 0.0,  # 0 = no wall-time bound
    "image_topic": "image",
    "image_reliable": False,  # False: SensorDataQoS (best effort, depth 5), as camera drivers publish
    "compressed_image_topic": "",  # e.g. "image/compressed" (jpeg/png); "" = not subscribed
    "command_topic": "~/command",
    "query_topic": "~/query",  # std_msgs/String: a one-shot query with the default task and mode
    "detections_topic": "~/detections",
    "points_topic": "~/points",
    "debug_image": True,  # publish ~/debug_image (rendered only while someone subscribes)
    "diagnostics_period_s": 1.0,
}


@dataclass
class Request:
    request_id: str
    query: object  # str or list[str]
    task: str
    mode: Optional[str]
    continuous: bool


class LocateNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("locate_node", **kwargs)
        for name, default in PARAMS.items():
            self.declare_parameter(name, default)
        self._locator = None
        self._subs, self._pubs = [], {}
        self._cv = threading.Condition()
        self._frame: Optional[Image] = None  # newest unprocessed frame (older ones are dropped)
        self._oneshot: list[Request] = []
        self._continuous: Optional[Request] = None
        self._worker: Optional[threading.Thread] = None
        self._running = False
        self.frames_received = self.frames_dropped = self.frames_processed = self.errors = self.hybrid_fallbacks = 0
        # seconds spent per stage, summed, and how many times: what the node adds around the model
        self.timing = {k: [0.0, 0] for k in ("convert", "model", "publish", "render")}
        self.last_error, self.last_latency_s, self._t_processed = "", 0.0, []
        self._diag_pub = self._diag_timer = None

    def p(self, name):
        return self.get_parameter(name).value

    # ---- lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from ..locator import Locator

        path = self.p("model_path")
        try:
            if not path:
                from ..cli import DEMO_CACHE
                from ..testing.tiny import build_tiny_checkpoint

                path = str(build_tiny_checkpoint(DEMO_CACHE))
                self.get_logger().warning(f"model_path is empty: using the bundled tiny RANDOM checkpoint {path} "
                                          "(it runs end to end but finds nothing)")
            t0 = time.perf_counter()
            self._locator = Locator.from_pretrained(path, device=self.p("device"), dtype=self.p("dtype") or None,
                                                    mode=self.p("mode"))
            self.get_logger().info(f"loaded {path} on {self.p('device')} in {time.perf_counter() - t0:.1f} s")
        except Exception as e:  # a bad checkpoint must not kill the node: configure fails, the node stays
            self.errors += 1
            self.get_logger().error(f"cannot load model {path!r}: {e}")
            return TransitionCallbackReturn.FAILURE
        self._pubs = {
            "detections": self.create_lifecycle_publisher(Detection2DArray, self.p("detections_topic"), 10),
            "points": self.create_lifecycle_publisher(LocatedPoints, self.p("points_topic"), 10),
        }
        if self.p("debug_image"):
            self._pubs["debug"] = self.create_lifecycle_publisher(Image, "~/debug_image", 1)
        image_qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE) if self.p("image_reliable") \
            else qos_profile_sensor_data
        self._subs = [
            self.create_subscription(Image, self.p("image_topic"), self._on_image, image_qos),
            self.create_subscription(LocateCommand, self.p("command_topic"), self._on_command, 10),
            self.create_subscription(String, self.p("query_topic"), self._on_query, 10),
        ]
        if self.p("compressed_image_topic"):
            self._subs.append(self.create_subscription(CompressedImage, self.p("compressed_image_topic"),
                                                       self._on_image, image_qos))
        self._model_path = path
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diag_timer = self.create_timer(self.p("diagnostics_period_s"), self._publish_diagnostics)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self._running = True
        self._worker = threading.Thread(target=self._work, name="locate_worker", daemon=True)
        self._worker.start()
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self._stop_worker()
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self._stop_worker()
        for s in self._subs:
            self.destroy_subscription(s)
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        if self._diag_timer is not None:
            self.destroy_timer(self._diag_timer)
            self.destroy_publisher(self._diag_pub)
        self._subs, self._pubs, self._locator = [], {}, None  # releases the model
        self._diag_pub = self._diag_timer = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self._stop_worker()
        return TransitionCallbackReturn.SUCCESS

    def _stop_worker(self):
        with self._cv:
            self._running = False
            self._cv.notify_all()
        if self._worker is not None:
            self._worker.join()
            self._worker = None

    # ---- inputs (executor thread: cheap, never blocks on the model) ---------------------------
    def _on_image(self, msg):  # sensor_msgs/Image or CompressedImage
        with self._cv:
            self.frames_received += 1
            if self._frame is not None:
                self.frames_dropped += 1  # never queue: only the newest frame matters
            self._frame = msg
            self._cv.notify()

    def _on_command(self, msg: LocateCommand):
        query = list(msg.categories) if msg.categories else msg.query
        if msg.continuous and not query:  # an empty continuous command clears the running one
            with self._cv:
                self._continuous = None
            return
        self._enqueue(Request(msg.request_id or uuid.uuid4().hex[:8], query, msg.task or self.p("default_task"),
                              msg.mode or None, msg.continuous))

    def _on_query(self, msg: String):
        self._enqueue(Request(uuid.uuid4().hex[:8], msg.data, self.p("default_task"), None, False))

    def _enqueue(self, req: Request):
        with self._cv:
            if req.continuous:
                self._continuous = req  # replaces the previous continuous command
            else:
                self._oneshot.append(req)
            self._cv.notify()

    # ---- worker thread ------------------------------------------------------------------------
    def _work(self):
        while True:
            with self._cv:
                self._cv.wait_for(lambda: not self._running or
                                  (self._frame is not None and (self._oneshot or self._continuous)))
                if not self._running:
                    return
                frame, self._frame = self._frame, None
                requests, self._oneshot = self._oneshot, []
                if self._continuous is not None:
                    requests.append(self._continuous)
            t0 = time.perf_counter()
            try:
                rgb = compressed_to_rgb(frame.format, frame.data) if isinstance(frame, CompressedImage) \
                    else image_msg_to_rgb(frame)
            except ImageConversionError as e:
                self._fail(f"image dropped: {e}")
                with self._cv:  # one-shot requests wait for the next good frame instead of being lost
                    self._oneshot[:0] = [r for r in requests if not r.continuous]
                continue
            self._time("convert", t0)
            results = [(req, self._answer(frame, rgb, req)) for req in requests]
            self.frames_processed += 1
            self.last_latency_s = time.perf_counter() - t0
            self._t_processed = [t for t in self._t_processed if t > time.monotonic() - 5.0] + [time.monotonic()]
            debug = self._pubs.get("debug")
            if debug is not None and debug.get_subscription_count() > 0:  # rendered only for someone
                t1 = time.perf_counter()
                debug.publish(self._render(frame, rgb, [r for _, r in results if r is not None]))
                self._time("render", t1)

    def _time(self, stage: str, since: float):
        t = self.timing[stage]
        t[0] += time.perf_counter() - since
        t[1] += 1

    def _answer(self, frame: Image, rgb, req: Request):
        t0 = time.perf_counter()
        try:
            res = self._locator.locate(rgb, req.query, task=req.task, mode=req.mode,
                                       max_new_tokens=self.p("max_new_tokens"), max_boxes=self.p("max_boxes"),
                                       max_time_s=self.p("max_time_s") or None)
        except ValueError as e:  # bad query, task or mode: report it, keep serving
            self._fail(f"request {req.request_id}: {e}")
            return None
        self._time("model", t0)
        t1 = time.perf_counter()
        self.hybrid_fallbacks += res.stats["hybrid_fallbacks"]
        dets = Detection2DArray(header=frame.header)
        pts = LocatedPoints(header=frame.header, request_id=req.request_id)
        for d in res.detections:
            if d.box is not None:
                det = Detection2D(header=frame.header, id=req.request_id)
                x1, y1, x2, y2 = d.box
                det.bbox.center.position.x, det.bbox.center.position.y = (x1 + x2) / 2, (y1 + y2) / 2
                det.bbox.size_x, det.bbox.size_y = x2 - x1, y2 - y1
                hyp = ObjectHypothesisWithPose()
                hyp.hypothesis.class_id, hyp.hypothesis.score = d.label, float(d.score)
                det.results.append(hyp)
                dets.detections.append(det)
            else:
                pts.points.append(LabeledPoint(label=d.label, x=d.point[0], y=d.point[1], score=float(d.score)))
        self._pubs["detections"].publish(dets)  # an empty array too: "nothing found" is an answer
        self._pubs["points"].publish(pts)
        self._time("publish", t1)
        return res

    def _render(self, frame, rgb, results) -> Image:
        from PIL import Image as PILImage
        from PIL import ImageDraw

        im = PILImage.fromarray(rgb)
        draw = ImageDraw.Draw(im)
        for res in results:
            for d in res.detections:
                if d.box is not None:
                    draw.rectangle(d.box, outline=(255, 0, 0), width=2)
                    draw.text((d.box[0] + 2, d.box[1] + 2), f"{d.label} {d.score:.2f}", fill=(255, 0, 0))
                else:
                    x, y = d.point
                    draw.ellipse((x - 4, y - 4, x + 4, y + 4), outline=(0, 255, 0), width=2)
        out = Image(header=frame.header, height=im.height, width=im.width, encoding="rgb8", step=im.width * 3)
        out.data = im.tobytes()
        return out

    def _publish_diagnostics(self):
        level = DiagnosticStatus.OK
        if self._locator is None or (self.last_error and self.frames_processed == 0):
            level = DiagnosticStatus.ERROR
        elif self.last_error:
            level = DiagnosticStatus.WARN
        fps = len(self._t_processed) / 5.0 if self._t_processed else 0.0
        values = {"fps": f"{fps:.2f}", "latency_ms": f"{1000 * self.last_latency_s:.1f}",
                  "frames_received": str(self.frames_received),
                  "frames_processed": str(self.frames_processed), "frames_dropped": str(self.frames_dropped),
                  **{f"{k}_ms_mean": f"{1000 * t / max(n, 1):.3f}" for k, (t, n) in self.timing.items()},
                  "errors": str(self.errors), "hybrid_fallbacks": str(self.hybrid_fallbacks),
                  "model": str(getattr(self, "_model_path", "")), "backend": "torch", "device": self.p("device"),
                  "mode": self.p("mode"), "last_error": self.last_error}
        status = DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: inference",
                                  message=self.last_error or "ok", hardware_id=self.p("device"),
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)

    def _fail(self, text: str):
        self.errors += 1
        self.last_error = text
        self.get_logger().error(text, throttle_duration_sec=1.0)


def main(args=None):
    rclpy.init(args=args)
    node = LocateNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node._stop_worker()
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()


if __name__ == "__main__":
    main()
