"""The evaluation command's glue: held-out set, per-family scoring, the JSON report."""
import numpy as np
import pytest

from locate_ros.evaluation.run import evaluate, goals, held_out_set, score
from locate_ros.results import Detection


def perfect(sample):
    out = []
    for t in sample.targets:
        out += [Detection(t.label, box=b) for b in t.boxes]
        out += [Detection(t.label, point=p) for p in t.points]
    return out


def test_ground_truth_scores_one_and_a_shift_scores_less():
    samples = held_out_set(seed=11, n=40, dense=2, image_size=(128, 192))
    assert {s.family for s in samples} >= {"objects", "dense", "pointing", "ocr", "referring"}
    exact = score(samples, [perfect(s) for s in samples])
    for family, entry in exact.items():
        value = entry["point_hit_rate"] if family == "pointing" else entry["mean_f1"]
        assert value == 1.0, (family, entry)
    assert exact["objects"]["protocol"] == "coco"

    def shifted(sample):  # every box moved right by a fifth of its width: IoU 0.8/1.2 = 0.667
        return [Detection(d.label, box=(d.box[0] + (d.box[2] - d.box[0]) / 5, d.box[1],
                                        d.box[2] + (d.box[2] - d.box[0]) / 5, d.box[3])) if d.box else d
                for d in perfect(sample)]

    moved = score(samples, [shifted(s) for s in samples])
    # matched at IoU 0.50, 0.55, 0.60 and 0.65 only: F1 1 at 4 of the 10 thresholds
    assert np.isclose(moved["dense"]["f1_50"], 1.0) and np.isclose(moved["dense"]["mean_f1"], 0.4)
    # category-aware: the right boxes under the wrong label do not count
    relabelled = [[Detection("not " + d.label, box=d.box) for d in perfect(s)] if s.family == "objects" else perfect(s)
                  for s in samples]
    assert score(samples, relabelled)["objects"]["mean_f1"] == 0.0


def test_evaluate_reports_every_mode(tiny_checkpoint):
    report = evaluate(str(tiny_checkpoint), seed=3, n=3, dense=0, modes=("slow", "hybrid"), image_size=(128, 128),
                      max_new_tokens=12, progress=False)
    assert report["images"] == 3 and set(report["modes"]) == {"slow", "hybrid"}
    assert report["instance_anchored"] is False  # the release layout declares the reference's windows
    for entry in report["modes"].values():
        assert {"families", "boxes_per_s", "hybrid_fallback_rate", "truncated"} <= set(entry)
        assert entry["seconds"] > 0
    assert set(report["goals"]) == {"slow_objects_mean_f1", "objects_f1_hybrid_minus_slow"}
    objects = [s for s in held_out_set(seed=3, n=3, dense=0, image_size=(128, 128)) if s.family == "objects"]
    assert objects  # the per-image record that tools/compare_evals.py pairs
    per_image = report["objects_per_image"]
    assert per_image["truth"] == [{t.label: [list(b) for b in t.boxes] for t in s.targets if t.boxes} for s in objects]
    assert set(per_image["answers"]) == {"slow", "hybrid"} and all(len(a) == len(objects) for a in per_image["answers"].values())
    low, high = report["modes"]["slow"]["families"]["objects"]["mean_f1_interval"]
    assert low <= report["modes"]["slow"]["families"]["objects"]["mean_f1"] <= high
    assert report["goals"]["objects_f1_hybrid_minus_slow"]["interval"] == report["objects_f1_hybrid_minus_slow_paired"]["interval"]


def _report(slow: float, fast: float, hybrid: float, slow_dense_f1: float, speedup: float) -> dict:
    def mode(f1: float, dense_f1: float) -> dict:
        return {"families": {"objects": {"mean_f1": f1}, "dense": {"f1_50": dense_f1}}}

    return {"modes": {"slow": mode(slow, slow_dense_f1), "fast": mode(fast, 0.5), "hybrid": mode(hybrid, 0.5)},
            "objects_f1_fast_minus_slow": fast - slow, "objects_f1_hybrid_minus_slow": hybrid - slow,
            "dense_bps_hybrid_over_slow": speedup}


def test_goals_are_judged_from_the_report():
    met = goals(_report(slow=0.65, fast=0.64, hybrid=0.66, slow_dense_f1=0.4, speedup=3.5))
    assert set(met) == {"slow_objects_mean_f1", "objects_f1_fast_minus_slow", "objects_f1_hybrid_minus_slow",
                        "dense_bps_hybrid_over_slow"}
    assert all(g["met"] for g in met.values())
    missed = goals(_report(slow=0.59, fast=0.565, hybrid=0.575, slow_dense_f1=0.4, speedup=2.9))
    assert not any(g["met"] for g in missed.values())
    assert np.isclose(missed["objects_f1_fast_minus_slow"]["value"], -0.025)
    # a speed-up over a slow mode that found nothing is no speed-up
    assert not goals(_report(0.7, 0.7, 0.7, slow_dense_f1=0.0, speedup=9.0))["dense_bps_hybrid_over_slow"]["met"]


def test_the_held_out_set_can_be_drawn_from_one_family():
    objects = held_out_set(seed=11, n=12, dense=1, image_size=(128, 192), families=["objects"])
    assert [s.family for s in objects] == ["objects"] * 12 + ["dense"]
    mixed = held_out_set(seed=11, n=40, dense=0, image_size=(128, 192))
    assert {s.family for s in mixed} > {"objects"}
    with pytest.raises(ValueError, match="other than dense"):
        held_out_set(seed=11, n=3, dense=0, image_size=(128, 192), families=["dense"])
