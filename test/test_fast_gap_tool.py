"""tools/fast_gap.py on the bundled model: one JSON line per mode whose counts add up, and it finds boxes;
the teacher-forced line compares block and stream rows box for box, and the x1-anchored blocks."""
import json
import subprocess
import sys
from pathlib import Path

from locate_ros.cli import BUNDLED_MODEL

TOOL = Path(__file__).resolve().parents[1] / "tools" / "fast_gap.py"


def test_fast_gap_counts_every_answered_box_once():
    out = subprocess.run([sys.executable, str(TOOL), str(BUNDLED_MODEL), "--images", "4", "--modes", "slow", "fast",
                          "--teacher-forced", "--lens"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [r["mode"] for r in rows] == ["teacher_forced", "slow", "fast"]
    forced = rows.pop(0)
    layers = json.loads((Path(BUNDLED_MODEL) / "config.json").read_text())["text_config"]["num_hidden_layers"]
    assert forced["boxes"] == rows[0]["truth"]  # every asked box of the scenes, once
    assert forced["stream_iou50"] >= 0.5  # on the true prefix the bundled model boxes most of them
    for kind in ("stream", "block"):
        assert len(forced[f"{kind}_gross"]) == 4 and all(0 <= g <= 1 for g in forced[f"{kind}_gross"])
    assert 0 <= forced["other_instance"] <= 3 * forced["boxes"]
    assert 0 <= forced["x1_missed_one_box"] <= forced["x1_missed"] <= forced["boxes"]
    assert round(forced["x1_missed"] / forced["boxes"], 3) == forced["block_gross"][0]
    kinds = [forced["colour_rival"], forced["other"]]  # every box in one kind, and the misses are the gross ones
    assert sum(k["boxes"] for k in kinds) == forced["boxes"]
    assert round(sum(k["stream_x1_missed"] for k in kinds) / forced["boxes"], 3) == forced["stream_gross"][0]
    assert forced["x1_missed"] <= sum(k["block_missed"] for k in kinds) <= forced["boxes"]
    assert all(0 <= k["stream_x1_missed"] <= k["boxes"] and 0 <= k["block_missed"] <= k["boxes"] for k in kinds)
    assert 0 <= forced["colour_rival"]["x1_on_other_colour"] <= forced["colour_rival"]["stream_x1_missed"]
    anchored = forced["anchored"]  # the x1 blocks: one per box; the last box of each group has no follower
    assert anchored["boxes"] == forced["boxes"] and len(anchored["gross"]) == 3
    assert 0 <= anchored["next_x1_missed"] <= anchored["next_boxes"] <= forced["boxes"] - 4
    assert 0 <= anchored["iou50"] <= 1 and all(0 <= g <= 1 for g in anchored["gross"])
    for kind in ("stream", "block"):  # one row per decoder layer; read through the head, the last is the model's own
        assert len(forced["lens"][kind]) == layers and forced["lens"][kind][-1] == forced[f"{kind}_gross"]
    assert forced["lens"]["block"][0] != forced["block_gross"]  # the first layer has not decided yet
    assert forced["end_blocks"] == 4 and 0 <= forced["end_as_box"] <= 4  # one answer per scene, one end each
    for r in rows:
        assert r["truth"] > 0 and 0 < r["found"] <= r["truth"], r  # the bundled model finds some of them
        # each answered box is a first match, a duplicate, mixed or far; first matches <= ground truth found
        first_matches = r["boxes"] - r["duplicates"] - r["mixed"] - r["far"]
        assert 0 <= first_matches <= r["found"], r
        assert r["recall_50"] == round(r["found"] / r["truth"], 3)
