"""Bootstrap intervals of the objects score: each resample is coco_f1 on a multiset of the images."""
import numpy as np
import pytest

from locate_ros.evaluation.metrics import coco_f1
from locate_ros.data.families import make_sample
from locate_ros.evaluation.run import objects_boxes
from locate_ros.evaluation.uncertainty import _draws, _scorer, mean_f1_interval, paired_difference


def truth_of(n_images: int) -> list[dict]:
    samples = [make_sample(21, i, size=(128, 192), families=["objects"]) for i in range(n_images)]
    return objects_boxes(samples, [[] for _ in samples])[1]


def answers_of(truth: list[dict], jitter_px: float, seed: int) -> list[dict]:
    """Every true box moved by Gaussian noise; every third image also loses its last box of each label."""
    rng = np.random.default_rng(seed)
    return [{label: [[c + rng.normal(0, jitter_px) for c in b] for b in boxes][: len(boxes) - (i % 3 == 0)]
             for label, boxes in t.items()} for i, t in enumerate(truth)]


def test_a_resample_is_scored_as_coco_f1_on_that_multiset_of_images():
    truth = truth_of(30)
    answers = answers_of(truth, 3.0, seed=1)
    score = _scorer(answers, truth)
    for w in _draws(truth, 4, seed=5):
        images = np.repeat(np.arange(len(truth)), w)
        expected = coco_f1([answers[i] for i in images], [truth[i] for i in images], max_dets=None).mean_f1
        assert score(w) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert score(np.ones(len(truth))) == pytest.approx(coco_f1(answers, truth, max_dets=None).mean_f1, rel=1e-12)


def test_the_interval_holds_the_score_and_narrows_with_more_images():
    widths = []
    for n in (20, 80):
        truth = truth_of(n)
        answers = answers_of(truth, 3.0, seed=2)
        low, high = mean_f1_interval(answers, truth)
        assert low < coco_f1(answers, truth, max_dets=None).mean_f1 < high
        widths.append(high - low)
    assert widths[1] < 0.75 * widths[0], widths  # ~1/sqrt(4) of it


def test_a_paired_difference_tells_a_better_answer_set_and_not_an_identical_one():
    truth = truth_of(40)
    loose, tight = answers_of(truth, 4.0, seed=3), answers_of(truth, 1.0, seed=3)
    same = paired_difference(loose, loose, truth)
    assert same["value"] == 0 and same["interval"] == [0.0, 0.0] and same["b_higher_share"] == 0
    better = paired_difference(loose, tight, truth)
    assert better["value"] > 0 and better["interval"][0] > 0 and better["b_higher_share"] > 0.975
    worse = paired_difference(tight, loose, truth)
    assert worse["value"] == pytest.approx(-better["value"]) and worse["interval"][1] < 0
    with pytest.raises(ValueError, match="one answer per image"):
        paired_difference(loose[:-1], tight, truth)
