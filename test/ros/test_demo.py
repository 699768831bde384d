"""The main job (`make demo`): node + camera-like publisher in separate processes, answers printed."""
import re
import subprocess
import sys

import pytest

from locate_ros.cli import default_model_path
from locate_ros.decoding.hybrid import HybridThresholds
from locate_ros.locator import checkpoint_thresholds

pytestmark = [pytest.mark.ros, pytest.mark.usefixtures("loopback_only")]


def test_demo_runs_the_node_end_to_end(tmp_path):
    out = tmp_path / "debug.png"
    res = subprocess.run([sys.executable, "-m", "locate_ros.ros.demo", "--frames", "2", "--out", str(out)],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    for line in ("frame 0 stamp", "frame 1 stamp", "boxes:", "points:", "demo: ground truth 'pink square'",
                 "demo: last answer vs ground truth: F1@0.5"):
        assert line in res.stdout, res.stdout
    assert out.exists() and out.stat().st_size > 0
    # the node says that the demo checkpoint's images are rescaled to its training sizes (its own process's log)
    assert "declares its training image sizes" in res.stdout + res.stderr, res.stdout + res.stderr
    # ... that its windows are instance-anchored with causal readout (not the reference's), and that its
    # hybrid rule is the reference's (it declares none, the profile sets none: nothing said about it)
    assert "declares instance-anchored windows" in res.stdout + res.stderr, res.stdout + res.stderr
    assert "(DecodeOptions.causal_readout)" in res.stdout + res.stderr, res.stdout + res.stderr
    assert checkpoint_thresholds(default_model_path()) == HybridThresholds()
    assert "fallback rule differs" not in res.stdout + res.stderr, res.stdout + res.stderr
    # the default model is the bundled demo checkpoint: the node's answer (hybrid mode, sent over DDS)
    # holds real boxes on the demo scene's squares (test_demo_model.py has the per-mode figures)
    f1_50 = float(re.search(r"F1@0.5 ([0-9.]+)", res.stdout).group(1))
    assert f1_50 > 0, res.stdout


def test_the_demo_sends_a_pointing_command_and_scores_the_points_it_gets(tmp_path):
    # a planner's "point to ..." (LocateCommand.task = point) over DDS: the answer comes back as
    # LocatedPoints and is scored against the squares (the bundled v12 answers pointing questions with
    # boxes, so its hit rate is low: tools/train_demo_model.sh, runs p1-p4, taught it pointing)
    res = subprocess.run([sys.executable, "-m", "locate_ros.ros.demo", "--frames", "1", "--task", "point",
                          "--out", str(tmp_path / "debug.png")], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"frame 0 stamp \S+ points: \d+", res.stdout), res.stdout
    assert re.search(r"point hit rate [0-9.]+ \(\d+ points, 5 true\)", res.stdout), res.stdout
