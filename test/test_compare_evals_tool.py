"""tools/compare_evals.py: two evaluation reports of one image set, compared per mode with a paired
bootstrap interval; reports of different image sets are refused."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from locate_ros.cli import BUNDLED_MODEL
from locate_ros.evaluation.run import evaluate

TOOL = Path(__file__).resolve().parents[1] / "tools" / "compare_evals.py"


def run(*args):
    return subprocess.run([sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_a_report_against_its_truth_and_against_itself_and_another_image_set(tmp_path):
    report = evaluate(str(BUNDLED_MODEL), seed=8, n=24, dense=0, modes=("slow", "fast"), image_size=(128, 224),
                      max_new_tokens=300, progress=False)
    truth = report["objects_per_image"]["truth"]
    assert len(truth) >= 6
    exact = copy.deepcopy(report)  # a checkpoint that answers the truth
    for mode in ("slow", "fast"):
        exact["objects_per_image"]["answers"][mode] = truth
        exact["modes"][mode]["families"]["objects"]["mean_f1"] = 1.0
    other = copy.deepcopy(report)  # a report of one image fewer
    other["objects_per_image"]["truth"] = truth[:-1]
    for name, r in (("a", report), ("exact", exact), ("other", other)):
        (tmp_path / f"{name}.json").write_text(json.dumps(r))

    better = run(tmp_path / "a.json", tmp_path / "exact.json")
    assert better.returncode == 0, better.stderr
    modes = json.loads(better.stdout)["modes"]
    assert set(modes) == {"slow", "fast"}
    for mode, m in modes.items():
        a = report["modes"][mode]["families"]["objects"]["mean_f1"]
        assert a < 1 and m["a_mean_f1"] == a and m["b_minus_a"] == pytest.approx(1 - a)
        assert 0 < m["interval"][0] <= m["b_minus_a"] <= m["interval"][1] and m["b_higher_share"] > 0.975

    same = json.loads(run(tmp_path / "a.json", tmp_path / "a.json").stdout)["modes"]["slow"]
    assert same["b_minus_a"] == 0 and same["interval"] == [0, 0]

    refused = run(tmp_path / "a.json", tmp_path / "other.json")
    assert refused.returncode == 2 and "different images" in refused.stderr and not refused.stdout
