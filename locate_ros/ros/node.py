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
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import Optional, Union

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.exceptions import ParameterUninitializedException
from rclpy.lifecycle import LifecycleNode, State, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String
from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

from ..decoding.hybrid import HybridThresholds
from ..decoding.loop import MODES
from ..msg import LabeledPoint, LocateCommand, LocatedPoints
from ..processing import PromptError, build_question
from .conversions import MAX_PIXELS, ImageConversionError, to_rgb

BACKENDS = ("torch",)  # TensorRT / ONNX Runtime backends plug in here (locate_ros.backends)
DROP_POLICIES = ("newest", "queue")

HYBRID_PREFIX = "hybrid."
PARAMS = {  # name: default (the YAML files under config/ set these)
    "model_path": "",  # checkpoint directory; "" = the bundled demo checkpoint
    "backend": "torch",
    "device": "cpu",
    "dtype": "",  # "" = float32 on CPU, bfloat16 on GPU
    "mode": "hybrid",  # slow | fast | hybrid
    "default_task": "detect",
    "max_new_tokens": 1024,
    "max_boxes": 200,
    "max_time_s": 0.0,  # 0 = no wall-time bound
    "max_query_chars": 2000,
    "max_image_pixels": MAX_PIXELS,  # larger images are refused (a malformed header cannot claim GBs)
    "image_topic": "image",  # the default camera
    "extra_image_topics": [],  # more cameras (sensor_msgs/Image); a command picks one with `camera`
    "compressed_image_topic": "",  # e.g. "image/compressed" (jpeg/png), also a default camera; "" = none
    "image_reliable": False,  # False: SensorDataQoS (best effort), as camera drivers publish
    "image_qos_depth": 1,
    # newest: one slot per camera, an unprocessed frame is dropped when a newer one arrives (live robots);
    # queue: frames wait in arrival order, at most frame_queue_depth, the oldest dropped beyond (bag replay)
    "frame_drop_policy": "newest",
    "frame_queue_depth": 30,
    "command_topic": "~/command",
    "query_topic": "~/query",  # std_msgs/String: a one-shot query with the default task and mode
    "detections_topic": "~/detections",
    "points_topic": "~/points",
    "debug_image": True,  # publish ~/debug_image (rendered only while someone subscribes)
    "diagnostics_period_s": 1.0,
    # Hybrid mode's fallback rule: hybrid.ambiguous_prob, ... Each is declared without a value: one left
    # unset takes the checkpoint's (the reference's constants, shown here, unless its
    # generation_config.json declares its own); one set in a profile or with -p replaces it.
    **{f"{HYBRID_PREFIX}{f.name}": f.default for f in fields(HybridThresholds)},
}


@dataclass
class Frame:
    msg: Union[Image, CompressedImage]
    camera: str  # the topic it came in on, as configured
    seq: int  # arrival number: a request is answered only on frames that arrive after it


@dataclass
class Request:
    request_id: str
    query: object  # str or list[str]
    task: str
    mode: Optional[str]
    continuous: bool
    camera: str  # "" = the default camera(s); else a topic name or a frame_id
    after_seq: int  # frames up to this arrival number came before the request

    def wants(self, frame: Frame, default_cameras: tuple[str, ...]) -> bool:
        if frame.seq <= self.after_seq:
            return False
        if not self.camera:
            return frame.camera in default_cameras
        return self.camera in (frame.camera, frame.camera.lstrip("/"), frame.msg.header.frame_id)


class LocateNode(LifecycleNode):
    def __init__(self, **kwargs):
        super().__init__("locate_node", **kwargs)
        for name, default in PARAMS.items():  # an empty list has no type of its own: say it
            if name.startswith(HYBRID_PREFIX):  # typed, no value: unset means "the checkpoint's"
                self.declare_parameter(name, Parameter.Type.from_parameter_value(default))
            else:
                self.declare_parameter(name, Parameter.Type.STRING_ARRAY if default == [] else default)
        self._locator = None
        self._subs, self._pubs = [], {}
        self._cv = threading.Condition()
        self._frames: deque[Frame] = deque()  # waiting frames, oldest first (see frame_drop_policy)
        self._oneshot: list[Request] = []
        self._continuous: dict[str, Request] = {}  # camera selector -> its running continuous command
        self._default_cameras: tuple[str, ...] = ()
        self._worker: Optional[threading.Thread] = None
        self._running = False
        self.frames_received = self.frames_processed = self.errors = self.hybrid_fallbacks = 0
        self.frames_dropped = 0  # a request wanted it, but a newer frame replaced it (or the queue overflowed)
        self.frames_skipped = 0  # replaced while no request wanted it (idle)
        # seconds spent per stage, summed, and how many times: what the node adds around the model
        self.timing = {k: [0.0, 0] for k in ("convert", "model", "publish", "render")}
        self.last_error, self.last_latency_s, self._t_processed = "", 0.0, []
        self._log_state: dict[str, tuple[float, int]] = {}  # error kind -> (last logged, suppressed since)
        self._diag_pub = self._diag_timer = None
        self._hybrid_rule = ""  # the thresholds hybrid mode uses that are not the reference's (set at configure)
        self._guard_change_state()

    def _guard_change_state(self):
        """Answer a transition the current state does not have with success=False instead of dying.

        rclpy's (Jazzy) change_state service raises RCLError out of the executor for such a request
        (`ros2 lifecycle set` configure twice, or a client's retry after a lost reply), which ends
        rclpy.spin and the node; rclcpp answers false. This does what rclcpp does.
        """
        service = getattr(self, "_service_change_state", None)  # rclpy's own; absent without its services
        if service is None:
            return
        rclpy_callback = service.callback

        def change_state(request, response):
            transition = request.transition
            available = {t[0]: t[1] for t in self._state_machine.available_transitions}
            if (transition.label and transition.label not in available.values()) or \
                    (not transition.label and transition.id not in available):
                state = self._state_machine.current_state[1]
                self.get_logger().warning(f"transition {transition.label or transition.id} is not available from "
                                          f"state {state!r} (available: {', '.join(available.values())}): refused")
                response.success = False
                return response
            return rclpy_callback(request, response)

        service.callback = change_state

    def p(self, name):
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:
            return PARAMS[name]

    def _check_parameters(self):
        for name, value, allowed in (("mode", self.p("mode"), MODES), ("backend", self.p("backend"), BACKENDS),
                                     ("frame_drop_policy", self.p("frame_drop_policy"), DROP_POLICIES)):
            if value not in allowed:
                raise ValueError(f"parameter {name}={value!r}: choose one of {', '.join(allowed)}")
        build_question(self.p("default_task"), "x")  # raises PromptError for an unknown task
        for name in ("max_image_pixels", "max_query_chars", "image_qos_depth", "frame_queue_depth"):
            if self.p(name) < 1:
                raise ValueError(f"parameter {name}={self.p(name)} must be >= 1")

    def _hybrid_parameters_set(self) -> dict:
        """The hybrid.* parameters given a value (a profile, a launch file, -p or ros2 param set)."""
        given = {}
        for f in fields(HybridThresholds):
            try:
                given[f.name] = self.get_parameter(HYBRID_PREFIX + f.name).value
            except ParameterUninitializedException:
                pass
        return given

    # ---- lifecycle -------------------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        from ..locator import Locator, checkpoint_thresholds

        path = self.p("model_path")
        try:
            self._check_parameters()
            if not path:
                from ..cli import default_model_path

                path = str(default_model_path())
                self.get_logger().info(f"model_path is empty: using the bundled demo checkpoint {path}")
            t0 = time.perf_counter()
            given = self._hybrid_parameters_set()
            declared = checkpoint_thresholds(path)
            thresholds = replace(declared, **given)  # validates the values
            self._locator = Locator.from_pretrained(path, device=self.p("device"), dtype=self.p("dtype") or None,
                                                    mode=self.p("mode"), thresholds=thresholds)
            self.get_logger().info(f"loaded {path} on {self.p('device')} in {time.perf_counter() - t0:.1f} s")
            changed = [f"{f.name}={getattr(thresholds, f.name)} ({'parameter' if f.name in given else 'checkpoint'})"
                       for f in fields(HybridThresholds) if getattr(thresholds, f.name) != f.default]
            self._hybrid_rule = ", ".join(changed) or "reference"  # also in /diagnostics (hybrid_rule)
            if changed:  # not the reference's rule: say so, and where each value came from
                self.get_logger().info(f"hybrid mode's fallback rule differs from the reference's: {self._hybrid_rule}")
            if self._locator.options.instance_anchored:  # not the reference's windows: say so
                self.get_logger().info("the checkpoint declares instance-anchored windows: fast and hybrid mode "
                                       "write each box's other edges after its x1 (DecodeOptions.instance_anchored) "
                                       "and answer its x2 y2 as the next step's causal rows pick them "
                                       "(DecodeOptions.causal_readout)")
            pr = self._locator.processor
            if pr.min_short_side is not None or pr.max_long_side is not None:  # not the reference's sizes: say so
                self.get_logger().info(f"the checkpoint declares its training image sizes: images are rescaled to a "
                                       f"shorter side >= {pr.min_short_side} px and a longer side <= "
                                       f"{pr.max_long_side} px (answers stay in the image's pixels)")
        except Exception as e:  # a bad checkpoint or parameter must not kill the node: configure fails, it stays
            self.errors += 1
            self.last_error = f"configure: {e}"
            self.get_logger().error(f"cannot configure with model {path!r}: {e}")
            return TransitionCallbackReturn.FAILURE
        self._pubs = {
            "detections": self.create_lifecycle_publisher(Detection2DArray, self.p("detections_topic"), 10),
            "points": self.create_lifecycle_publisher(LocatedPoints, self.p("points_topic"), 10),
        }
        if self.p("debug_image"):
            self._pubs["debug"] = self.create_lifecycle_publisher(Image, "~/debug_image", 1)
        depth = self.p("image_qos_depth")
        image_qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE) if self.p("image_reliable") \
            else QoSProfile(**{**_qos_fields(qos_profile_sensor_data), "depth": depth})
        cameras = [(Image, self.p("image_topic"))] + [(Image, t) for t in self.p("extra_image_topics") if t]
        if self.p("compressed_image_topic"):
            cameras.append((CompressedImage, self.p("compressed_image_topic")))
        self._default_cameras = (self.p("image_topic"), self.p("compressed_image_topic"))
        # read once here, not per frame on the executor and worker hot paths
        self._keep_newest_only = self.p("frame_drop_policy") == "newest"
        self._queue_depth, self._max_pixels = self.p("frame_queue_depth"), self.p("max_image_pixels")
        self._subs = [self.create_subscription(msg_type, topic, lambda m, t=topic: self._on_image(m, t), image_qos)
                      for msg_type, topic in cameras]
        self._subs += [
            self.create_subscription(LocateCommand, self.p("command_topic"), self._on_command, 10),
            self.create_subscription(String, self.p("query_topic"), self._on_query, 10),
        ]
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
        self._hybrid_rule = ""  # the model's rule goes with it
        with self._cv:
            self._frames.clear()
            self._oneshot, self._continuous = [], {}
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
    def _on_image(self, msg, camera: str):  # sensor_msgs/Image or CompressedImage
        with self._cv:
            self.frames_received += 1
            frame = Frame(msg, camera, self.frames_received)
            if self._keep_newest_only:  # only the newest frame of a camera matters
                for old in [f for f in self._frames if f.camera == camera]:
                    self._frames.remove(old)
                    self._count_unprocessed(old)
            elif len(self._frames) >= self._queue_depth:
                self._count_unprocessed(self._frames.popleft())
            self._frames.append(frame)
            self._cv.notify()

    def _count_unprocessed(self, frame: Frame):
        if any(r.wants(frame, self._default_cameras) for r in self._requests()):
            self.frames_dropped += 1
        else:
            self.frames_skipped += 1

    def _requests(self) -> list[Request]:
        return self._oneshot + list(self._continuous.values())

    def _on_command(self, msg: LocateCommand):
        query = list(msg.categories) if msg.categories else msg.query
        if msg.continuous and not query:  # an empty continuous command clears the running one
            with self._cv:
                self._continuous.pop(msg.camera, None)
            return
        self._enqueue(Request(msg.request_id or uuid.uuid4().hex[:8], query, msg.task or self.p("default_task"),
                              msg.mode or None, msg.continuous, msg.camera, self.frames_received))

    def _on_query(self, msg: String):
        self._enqueue(Request(uuid.uuid4().hex[:8], msg.data, self.p("default_task"), None, False, "",
                              self.frames_received))

    def _enqueue(self, req: Request):
        try:  # a bad request is reported now, not when a frame arrives
            build_question(req.task, req.query, max_query_chars=self.p("max_query_chars"))
            if req.mode is not None and req.mode not in MODES:
                raise PromptError(f"unknown decoding mode {req.mode!r}; choose one of {', '.join(MODES)}")
        except PromptError as e:
            self._fail(f"request {req.request_id}: {e}")
            return
        with self._cv:
            if req.continuous:
                self._continuous[req.camera] = req  # replaces that camera's previous continuous command
            else:
                self._oneshot.append(req)
            self._cv.notify()

    # ---- worker thread ------------------------------------------------------------------------
    def _next_job(self) -> Optional[tuple[Frame, list[Request]]]:
        """The oldest waiting frame some request wants, with those requests (caller holds the lock)."""
        for frame in self._frames:
            wanted = [r for r in self._requests() if r.wants(frame, self._default_cameras)]
            if wanted:
                return frame, wanted
        return None

    def _work(self):
        while True:
            with self._cv:
                while self._running and (job := self._next_job()) is None:
                    self._cv.wait()
                if not self._running:
                    return
                frame, requests = job
                self._frames.remove(frame)
                self._oneshot = [r for r in self._oneshot if r not in requests]
            t0 = time.perf_counter()
            try:
                rgb = to_rgb(frame.msg, self._max_pixels)
            except ImageConversionError as e:
                self._fail(f"image dropped ({frame.camera}): {e}", kind="image")
                with self._cv:  # one-shot requests wait for the next good frame instead of being lost
                    self._oneshot[:0] = [r for r in requests if not r.continuous]
                continue
            self._time("convert", t0)
            results = [(req, self._answer(frame.msg, rgb, req)) for req in requests]
            self.frames_processed += 1
            self.last_latency_s = time.perf_counter() - t0
            self._t_processed = [t for t in self._t_processed if t > time.monotonic() - 5.0] + [time.monotonic()]
            debug = self._pubs.get("debug")
            if debug is not None and debug.get_subscription_count() > 0:  # rendered only for someone
                t1 = time.perf_counter()
                debug.publish(self._render(frame.msg, rgb, [r for _, r in results if r is not None]))
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
                  "frames_skipped": str(self.frames_skipped),
                  **{f"{k}_ms_mean": f"{1000 * t / max(n, 1):.3f}" for k, (t, n) in self.timing.items()},
                  "errors": str(self.errors), "hybrid_fallbacks": str(self.hybrid_fallbacks),
                  "model": str(getattr(self, "_model_path", "")), "backend": self.p("backend"), "device": self.p("device"),
                  "mode": self.p("mode"), "hybrid_rule": self._hybrid_rule, "last_error": self.last_error}
        status = DiagnosticStatus(level=level, name=f"{self.get_fully_qualified_name()}: inference",
                                  message=self.last_error or "ok", hardware_id=self.p("device"),
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        arr = DiagnosticArray(status=[status])
        arr.header.stamp = self.get_clock().now().to_msg()
        self._diag_pub.publish(arr)

    def _fail(self, text: str, kind: str = "request"):
        """Count and report an error; log at most one line per second per kind, saying how many were not."""
        self.errors += 1
        self.last_error = text
        last, suppressed = self._log_state.get(kind, (-1e9, 0))
        now = time.monotonic()
        if now - last < 1.0:
            self._log_state[kind] = (last, suppressed + 1)
            return
        self._log_state[kind] = (now, 0)
        self.get_logger().error(text + (f" ({suppressed} more {kind} errors not logged)" if suppressed else ""))


def _qos_fields(qos: QoSProfile) -> dict:
    return {"history": qos.history, "depth": qos.depth, "reliability": qos.reliability, "durability": qos.durability}


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
