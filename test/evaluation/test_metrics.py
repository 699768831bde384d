"""The paper's accuracy metrics on hand-built cases with hand-computed expectations.

Many cases use "segments": boxes of height 1 on y in [0, 1], so the IoU is the 1-D interval IoU and
easy to compute by hand (all chosen IoUs lie at least 0.01 away from any threshold).
"""
import numpy as np
import pytest

from locate_ros.evaluation import (
    IOU_THRESHOLDS,
    box_iou,
    coco_f1,
    dense_f1,
    gui_accuracy,
    gui_hit,
    point_hit_rate,
)

EMPTY = np.zeros((0, 4))
GT = [0.0, 0.0, 10.0, 10.0]
IOU_062 = [0.0, 0.0, 10.0, 6.2]  # inside GT, IoU 0.62: matches at 0.50, 0.55, 0.60 only
FAR = [100.0, 100.0, 110.0, 110.0]  # IoU 0 with everything near the origin


def seg(x1, x2):
    return [x1, 0.0, x2, 1.0]


# ------------------------------------------------------------------------------------------ IoU
def test_thresholds():
    np.testing.assert_allclose(IOU_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])


def test_box_iou_values_and_shape():
    a = np.array([[0, 0, 2, 2], [0, 0, 10, 10]], dtype=float)
    b = np.array([[1, 1, 3, 3], [0, 0, 10, 10], [20, 20, 30, 30]], dtype=float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    # inter 1, union 4 + 4 - 1 = 7 (continuous areas, no +1)
    np.testing.assert_allclose(iou[0], [1 / 7, 4 / 100, 0.0])
    np.testing.assert_allclose(iou[1], [4 / 100, 1.0, 0.0])  # [1, 1, 3, 3] lies inside: 4 / 100
    assert box_iou(IOU_062, GT)[0, 0] == pytest.approx(0.62)


def test_box_iou_zero_area_and_empty():
    point_box = [[5, 5, 5, 5]]
    assert box_iou(point_box, point_box)[0, 0] == 0.0  # union 0 -> 0, not nan
    assert box_iou(point_box, [GT])[0, 0] == 0.0
    assert box_iou(EMPTY, [GT, GT]).shape == (0, 2)
    assert box_iou([], []).shape == (0, 0)


# ---------------------------------------------------------------------------- protocol 2: dense
def test_dense_perfect():
    boxes = [[GT, seg(20, 30)], [seg(0, 5)]]
    r = dense_f1(boxes, boxes)
    assert r.mean_f1 == 1.0
    np.testing.assert_array_equal(r.f1, np.ones(10))
    assert r.f1_50 == r.f1_95 == 1.0


def test_dense_known_iou():
    r = dense_f1([[IOU_062]], [[GT]])
    np.testing.assert_array_equal(r.f1, [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
    assert r.mean_f1 == pytest.approx(0.3)
    assert r.f1_at(0.6) == 1.0 and r.f1_at(0.65) == 0.0


def test_dense_duplicates_lower_precision():
    r = dense_f1([[GT, GT]], [[GT]])  # one match, two predictions
    np.testing.assert_allclose(r.precision, 0.5)
    np.testing.assert_allclose(r.recall, 1.0)
    assert r.mean_f1 == pytest.approx(2 / 3)


def test_dense_missed_ground_truth_lowers_recall():
    r = dense_f1([[GT]], [[GT, seg(20, 30)]])
    np.testing.assert_allclose(r.precision, 1.0)
    np.testing.assert_allclose(r.recall, 0.5)
    assert r.mean_f1 == pytest.approx(2 / 3)


def test_dense_empty_image_conventions():
    # both empty: P = R = 1
    assert dense_f1([EMPTY, [GT]], [[], [GT]]).mean_f1 == 1.0
    # predictions without ground truth: P = 0, R = 1 -> averaged with a perfect image P = 0.5, R = 1
    r = dense_f1([[GT], [GT]], [EMPTY, [GT]])
    np.testing.assert_allclose(r.precision, 0.5)
    np.testing.assert_allclose(r.recall, 1.0)
    assert r.mean_f1 == pytest.approx(2 / 3)
    # ground truth without predictions: P = 0, R = 0 -> averaged with a perfect image P = R = 0.5
    r = dense_f1([EMPTY, [GT]], [[GT], [GT]])
    np.testing.assert_allclose(r.precision, 0.5)
    np.testing.assert_allclose(r.recall, 0.5)
    assert r.mean_f1 == pytest.approx(0.5)


def test_dense_averages_per_image_not_pooled():
    # image 1: 1 gt, 1 perfect prediction (P 1); image 2: 1 gt, 3 predictions, one perfect (P 1/3)
    r = dense_f1([[GT], [GT, FAR, FAR]], [[GT], [GT]])
    np.testing.assert_allclose(r.precision, (1 + 1 / 3) / 2)  # pooled would be 2/4
    np.testing.assert_allclose(r.recall, 1.0)


def test_dense_greedy_in_ground_truth_order():
    # gt A = [0, 10], B = [3, 13]; p0 = [1, 11]: IoU(A) 9/11 = .818, IoU(B) 8/12 = .667;
    # p1 = [0, 7.8]: IoU(A) .78, IoU(B) 4.8/13 = .369.
    # A (first) takes p0, its best; B is left with p1 (< .5): 1 match, although A-p1 + B-p0 gives 2.
    preds, gts = [[seg(1, 11), seg(0, 7.8)]], [[seg(0, 10), seg(3, 13)]]
    r = dense_f1(preds, gts)
    assert r.f1_50 == pytest.approx(0.5)  # P = R = 1/2
    # one match up to 0.80 (A-p0 .818), none from 0.85: 7 thresholds at F1 0.5
    np.testing.assert_allclose(r.f1, [0.5] * 7 + [0.0] * 3)
    assert r.mean_f1 == pytest.approx(0.35)


def test_dense_tie_goes_to_lowest_prediction_index():
    # gt A = [0, 10], B = [3, 13]; p0 = [-1, 9] and p1 = [1, 11] both have IoU 9/11 with A;
    # IoU(p1, B) = .667, IoU(p0, B) = 6/14 = .43. A takes p0 (lowest index), so B can take p1:
    # 2 matches to 0.65, 1 (A-p0 .818) at 0.70-0.80, 0 above.
    r = dense_f1([[seg(-1, 9), seg(1, 11)]], [[seg(0, 10), seg(3, 13)]])
    np.testing.assert_allclose(r.f1, [1.0] * 4 + [0.5] * 3 + [0.0] * 3)
    assert r.mean_f1 == pytest.approx(0.55)


def test_dense_prediction_used_once():
    r = dense_f1([[GT]], [[GT, GT]])  # one prediction cannot match two ground truths
    np.testing.assert_allclose(r.recall, 0.5)
    np.testing.assert_allclose(r.precision, 1.0)


def test_dense_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        dense_f1([[GT]], [[GT], [GT]])


# ------------------------------------------------------------------------ protocol 1: COCO / LVIS
def test_coco_perfect():
    gts = [{"cat": [GT], "dog": [seg(20, 30), seg(40, 50)]}, {"dog": [FAR]}]
    r = coco_f1(gts, gts)
    assert r.mean_f1 == 1.0
    np.testing.assert_array_equal(r.f1, np.ones(10))


def test_coco_drops_categories_absent_from_the_image():
    gts = [{"cat": [GT], "bird": EMPTY}]
    preds = [{"cat": [GT], "dog": [FAR, GT], "bird": [GT]}]  # "dog" absent, "bird" has no boxes here
    r = coco_f1(preds, gts)
    assert r.mean_f1 == 1.0


def test_coco_pools_images_at_the_final_operating_point():
    # "cat": image 1: 1 gt, 1 perfect; image 2: 1 gt, 3 detections, 1 perfect -> TP 2 of 4, 2 gts
    r = coco_f1([{"cat": [GT]}, {"cat": [FAR, GT, FAR]}], [{"cat": [GT]}, {"cat": [GT]}])
    np.testing.assert_allclose(r.precision, 0.5)
    np.testing.assert_allclose(r.recall, 1.0)
    assert r.mean_f1 == pytest.approx(2 / 3)


def test_coco_averages_categories():
    # "a" perfect (P = R = 1); "b": 1 gt, 2 detections, one perfect (P 1/2, R 1) -> P 3/4, R 1
    r = coco_f1([{"a": [GT], "b": [GT, FAR]}], [{"a": [GT], "b": [GT]}])
    assert r.mean_precision == pytest.approx(0.75)
    assert r.mean_recall == pytest.approx(1.0)
    assert r.mean_f1 == pytest.approx(6 / 7)


def test_coco_averages_thresholds_before_f1():
    # "a": 1 gt, detections [perfect, far]: P 1/2, R 1 at every threshold.
    # "b": 1 gt, one detection at IoU .62: P = R = 1 at 0.50-0.60, 0 above -> 0.3 each on average.
    # Averages: P = (0.5 + 0.3) / 2 = 0.4, R = (1 + 0.3) / 2 = 0.65 -> mean F1 = 2*.4*.65/1.05
    r = coco_f1([{"a": [GT, FAR], "b": [IOU_062]}], [{"a": [GT], "b": [GT]}])
    assert r.mean_precision == pytest.approx(0.4)
    assert r.mean_recall == pytest.approx(0.65)
    assert r.mean_f1 == pytest.approx(0.52 / 1.05)
    # per threshold: 0.50-0.60: P .75, R 1 -> 6/7; above: P .25, R .5 -> 1/3
    np.testing.assert_allclose(r.f1, [6 / 7] * 3 + [1 / 3] * 7)
    assert r.f1_50 == pytest.approx(6 / 7)
    assert r.f1.mean() == pytest.approx(103 / 210)  # not the headline number
    assert r.mean_f1 != pytest.approx(r.f1.mean())


def test_coco_max_dets_truncates_in_given_order():
    preds, gts = [{"cat": [FAR, FAR, FAR, GT]}], [{"cat": [GT]}]
    assert coco_f1(preds, gts, max_dets=100).mean_f1 == pytest.approx(0.4)  # P 1/4, R 1
    assert coco_f1(preds, gts, max_dets=None).mean_f1 == pytest.approx(0.4)
    assert coco_f1(preds, gts, max_dets=3).mean_f1 == 0.0  # the match is the 4th detection
    r = coco_f1(preds, gts, max_dets=4)
    np.testing.assert_allclose(r.precision, 0.25)


def test_coco_max_dets_counts_per_image_and_category():
    # pycocotools truncates dt[:maxDet] per (image, category): one detection each for two categories
    r = coco_f1([{"a": [GT], "b": [FAR]}], [{"a": [GT], "b": [FAR]}], max_dets=1)
    assert r.mean_f1 == 1.0


def test_coco_greedy_in_detection_order():
    # gts g0 = [0, 10], g1 = [3, 13]; d0 = [1, 11]: IoU .818 / .667; d1 = [0, 7.8]: IoU .78 / .369
    g = {"c": [seg(0, 10), seg(3, 13)]}
    d0, d1 = seg(1, 11), seg(0, 7.8)
    # d0 first takes g0 (its best), d1 is left with g1 (< .5): TP 1 up to 0.80
    r = coco_f1([{"c": [d0, d1]}], [g])
    np.testing.assert_allclose(r.precision, [0.5] * 7 + [0.0] * 3)
    assert r.mean_f1 == pytest.approx(0.35)
    # d1 first: d1-g0 (.78), d0-g1 (.667): TP 2 to 0.65; then TP 1 (d1-g0 to 0.75, d0-g0 .818 at 0.80)
    r = coco_f1([{"c": [d1, d0]}], [g])
    np.testing.assert_allclose(r.precision, [1.0] * 4 + [0.5] * 3 + [0.0] * 3)
    assert r.mean_f1 == pytest.approx(0.55)


def test_coco_tie_goes_to_last_ground_truth():
    # g0 = [-1, 9], g1 = [1, 11]; d0 = [0, 10] has IoU 9/11 with both -> pycocotools takes g1 (last);
    # d1 = [-3, 7]: IoU(g0) 8/12 = .667, IoU(g1) 6/14 = .43, so d1 can still take g0.
    r = coco_f1([{"c": [seg(0, 10), seg(-3, 7)]}], [{"c": [seg(-1, 9), seg(1, 11)]}])
    np.testing.assert_allclose(r.recall, [1.0] * 4 + [0.5] * 3 + [0.0] * 3)
    assert r.mean_f1 == pytest.approx(0.55)


def test_coco_category_without_detections():
    # "b" has ground truth but no detection: P = R = 0 for it (it still counts in the average)
    r = coco_f1([{"a": [GT]}], [{"a": [GT], "b": [FAR]}])
    assert r.mean_precision == pytest.approx(0.5)
    assert r.mean_recall == pytest.approx(0.5)
    assert r.mean_f1 == pytest.approx(0.5)


def test_coco_needs_ground_truth():
    with pytest.raises(ValueError):
        coco_f1([{"a": [GT]}], [{"a": EMPTY}])


# ------------------------------------------------------------------------------------------ points
def test_point_inside_inclusive_bounds():
    r = point_hit_rate([[[10.0, 5.0]], [[0.0, 0.0]], [[10.5, 5.0]]], [[GT], [GT], [GT]])
    assert r.hit_rate == pytest.approx(2 / 3)  # edge and corner hit, just outside misses


def test_point_one_to_one():
    a, b = [0, 0, 10, 10], [20, 0, 30, 10]
    # one point in A, two in B: B can be hit once -> 2 hits of max(3, 2)
    r = point_hit_rate([[[5, 5], [25, 5], [26, 5]]], [[a, b]])
    assert r.hit_rate == pytest.approx(2 / 3)
    assert r.precision == pytest.approx(2 / 3)
    assert r.recall == 1.0
    # one point inside both boxes hits only one of them
    r = point_hit_rate([[[5, 5]]], [[a, a]])
    assert (r.hit_rate, r.precision, r.recall) == (0.5, 1.0, 0.5)


def test_point_greedy_in_box_order():
    # A = [0, 10] x [0, 10], B = [5, 15] x [0, 10]; p0 = (7, 5) in both, p1 = (2, 5) only in A.
    # A takes p0 (lowest index inside it), B then has no point: 1 hit, although A-p1 + B-p0 gives 2.
    r = point_hit_rate([[[7, 5], [2, 5]]], [[[0, 0, 10, 10], [5, 0, 15, 10]]])
    assert r.hit_rate == 0.5


def test_point_empty_conventions_and_box_centres():
    r = point_hit_rate([np.zeros((0, 2))], [EMPTY])
    assert (r.hit_rate, r.precision, r.recall) == (1.0, 1.0, 1.0)
    r = point_hit_rate([[[5, 5]]], [EMPTY])
    assert (r.hit_rate, r.precision, r.recall) == (0.0, 0.0, 1.0)
    r = point_hit_rate([np.zeros((0, 2))], [[GT]])
    assert (r.hit_rate, r.precision, r.recall) == (0.0, 0.0, 0.0)
    # predicted boxes count by their centre: centre (9, 9) inside although the box sticks out
    assert point_hit_rate([[[4, 4, 14, 14]]], [[GT]]).hit_rate == 1.0


# --------------------------------------------------------------------------------------------- GUI
def test_gui_hit():
    assert gui_hit([3, 4], GT)
    assert gui_hit([10, 10], GT)  # inclusive
    assert not gui_hit([10.01, 5], GT)
    assert gui_hit([5, 5, 14, 14], GT)  # centre (9.5, 9.5) inside although the box sticks out
    assert not gui_hit([8, 8, 30, 30], GT)  # overlaps, but centre (19, 19) outside
    assert gui_hit([[5, 5], [50, 50]], GT)  # only the first prediction counts
    assert not gui_hit([[50, 50], [5, 5]], GT)
    assert not gui_hit(np.zeros((0, 2)), GT)
    assert gui_accuracy([[5, 5], [50, 50], [0, 0, 2, 2], []], [GT, GT, GT, GT]) == pytest.approx(0.5)
