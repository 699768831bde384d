"""tools/iou_breakdown.py: per decoding mode, where each object's nearest same-label answer lands."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from locate_ros.data.families import make_sample
from locate_ros.evaluation.run import objects_boxes

TOOL = Path(__file__).resolve().parents[1] / "tools" / "iou_breakdown.py"


def test_exact_shifted_and_missing_answers_land_in_their_buckets(tmp_path):
    samples = [make_sample(31, i, size=(128, 224), families=["objects"]) for i in range(12)]
    truth = objects_boxes(samples, [[] for _ in samples])[1]

    def shifted(b):  # right by a fifth of the width: IoU 0.8 / 1.2 = 0.667
        w = (b[2] - b[0]) / 5
        return [b[0] + w, b[1], b[2] + w, b[3]]

    answers = {"exact": truth, "shifted": [{k: [shifted(b) for b in v] for k, v in t.items()} for t in truth],
               "silent": [{} for _ in truth]}
    (tmp_path / "r.json").write_text(json.dumps({"objects_per_image": {"truth": truth, "answers": answers}}))
    out = subprocess.run([sys.executable, str(TOOL), str(tmp_path / "r.json"), "--small-px", "30"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = {r["mode"]: r for r in map(json.loads, out.stdout.splitlines())}
    n = sum(len(v) for t in truth for v in t.values())
    expect = {"exact": "from_0.9", "shifted": "0.5_to_0.75", "silent": "below_0.1"}
    for mode, bucket in expect.items():
        r = rows[mode]
        assert r["objects"] == n and r["small"]["objects"] + r["large"]["objects"] == n
        assert r["best_iou"][bucket] == 1.0 and sum(r["best_iou"].values()) == pytest.approx(1.0)
        assert r["answers_per_object"] == (0 if mode == "silent" else 1)
    assert rows["exact"]["small"]["objects"] > 0 and rows["exact"]["large"]["iou_0.75_share"] == 1.0
    assert rows["shifted"]["large"]["iou_0.75_share"] == 0.0
    (tmp_path / "bare.json").write_text(json.dumps({"modes": {}}))
    refused = subprocess.run([sys.executable, str(TOOL), str(tmp_path / "bare.json")], capture_output=True, text=True)
    assert refused.returncode == 2 and "objects_per_image" in refused.stderr
