"""tools/calibrate_hybrid.py: hybrid mode of the bundled demo model under a grid of ambiguity rules
and verify ratios."""
import json
import subprocess
import sys
from pathlib import Path

from locate_ros.cli import BUNDLED_MODEL

TOOL = Path(__file__).resolve().parents[1] / "tools" / "calibrate_hybrid.py"


def test_each_rule_is_run_and_scored_against_slow(tmp_path):
    # a rule that calls every coordinate ambiguous (spread 0 among the top 64, any probability) sends
    # every box to token-by-token decoding; the reference's rule, on this model's broad rows, almost none
    out = subprocess.run([sys.executable, str(TOOL), str(BUNDLED_MODEL), "--seed", "31", "--n", "6", "--dense", "1",
                          "--top-k", "64", "--spread", "0", "--prob", "1.0", "--verify", "1", "--out", str(tmp_path / "r.json")],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report == json.loads((tmp_path / "r.json").read_text())
    rules = report["rules"]
    assert list(rules) == ["slow", "fast", "reference", "k64_s0_p1", "verify1"]
    every = rules["k64_s0_p1"]
    assert every["rule"] == {"ambiguous_top_k": 64, "ambiguous_spread": 0, "ambiguous_prob": 1.0, "verify_ratio": 0.0}
    # checked against token-by-token choices at a ratio of 1, hybrid mode answers as slow mode does
    assert rules["verify1"]["rule"]["verify_ratio"] == 1.0
    assert rules["verify1"]["minus_slow"] == 0 and rules["verify1"]["minus_slow_interval"] == [0, 0]
    assert every["fallback_rate"] > 0.9 > rules["reference"]["fallback_rate"]
    assert rules["slow"]["fallback_rate"] == rules["fast"]["fallback_rate"] == 0
    for name, row in rules.items():
        assert 0 <= row["objects_mean_f1"] <= 1 and row["boxes_per_s"] > 0 and row["dense_bps_over_slow"] > 0
        assert 0 <= row["dense_fallback_rate"] <= 1
        if name != "slow":
            lo, hi = row["minus_slow_interval"]
            assert lo <= row["minus_slow"] <= hi
    assert rules["slow"]["dense_bps_over_slow"] == 1.0
