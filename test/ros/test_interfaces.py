"""Our messages and vision_msgs over real DDS between two separate processes (scripts/ros_smoke.py)."""
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("loopback_only")]
SMOKE = Path(__file__).resolve().parents[2] / "scripts" / "ros_smoke.py"


def test_messages_build_and_import():
    from vision_msgs.msg import Detection2DArray

    from locate_ros.msg import LabeledPoint, LocateCommand, LocatedPoints

    pts = LocatedPoints(request_id="r1", points=[LabeledPoint(label="handle", x=1.5, y=2.0, score=0.9)])
    assert pts.points[0].label == "handle" and LocateCommand().continuous is False
    assert Detection2DArray().detections == []


def test_command_and_detections_cross_processes_over_loopback_dds():
    out = subprocess.run([sys.executable, str(SMOKE), "--timeout", "60"], capture_output=True, text=True, timeout=120)
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "sub: LocateCommand ok" in out.stdout and "sub: Detection2DArray ok" in out.stdout
    assert "smoke: PASS" in out.stdout
