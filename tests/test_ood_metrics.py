"""OOD metrics against values worked out by hand, with and without ties."""

import numpy as np
import pytest
import scipy.stats

from keras_noisewarm.ood import metrics

# In: 0.9, 0.8, 0.4. Out: 0.5, 0.1. Ranked: 0.9 I, 0.8 I, 0.5 O, 0.4 I, 0.1 O.
DISTINCT_IN = [0.9, 0.8, 0.4]
DISTINCT_OUT = [0.5, 0.1]
# In: 1, 1, 0.5. Out: 1, 0.5, 0. Blocks of ties: {1: I I O}, {0.5: I O}, {0: O}.
TIED_IN = [1.0, 1.0, 0.5]
TIED_OUT = [1.0, 0.5, 0.0]


def test_auroc_counts_ordered_pairs():
    # 6 (in, out) pairs; only (0.4, 0.5) is in the wrong order.
    assert metrics.auroc(DISTINCT_IN, DISTINCT_OUT) == pytest.approx(5 / 6)


def test_roc_curve_steps_through_each_distinct_threshold():
    # Ranked 0.9 I, 0.8 I, 0.5 O, 0.4 I, 0.1 O: up, up, right, up, right.
    fpr, tpr = metrics.roc_curve(DISTINCT_IN, DISTINCT_OUT)
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 1 / 3, 2 / 3, 2 / 3, 1, 1])


def test_roc_curve_moves_diagonally_through_a_block_of_ties():
    # Blocks {1: I I O}, {0.5: I O}, {0: O}: one point per block.
    fpr, tpr = metrics.roc_curve(TIED_IN, TIED_OUT)
    np.testing.assert_allclose(fpr, [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(tpr, [0, 2 / 3, 1, 1])


def test_auroc_counts_tied_pairs_as_one_half():
    # In 1 vs out (1, 0.5, 0): 0.5 + 1 + 1, twice; in 0.5 vs out: 0 + 0.5 + 1.
    assert metrics.auroc(TIED_IN, TIED_OUT) == pytest.approx(6.5 / 9)


def test_auroc_equals_mann_whitney_u_over_pairs_with_many_ties():
    rng = np.random.default_rng(0)
    id_scores = rng.integers(0, 6, size=300).astype(float)
    ood_scores = rng.integers(0, 4, size=200).astype(float)
    u_statistic = scipy.stats.mannwhitneyu(id_scores, ood_scores).statistic
    assert metrics.auroc(id_scores, ood_scores) == pytest.approx(u_statistic / (300 * 200))


def test_auroc_is_the_same_whichever_set_is_called_positive():
    rng = np.random.default_rng(1)
    id_scores, ood_scores = rng.normal(1, 1, 50), rng.normal(0, 1, 40)
    # OOD as positive, detected by low score: rank -score.
    assert metrics.auroc(id_scores, ood_scores) == pytest.approx(
        metrics.auroc(-ood_scores, -id_scores)
    )


def test_aupr_in_is_average_precision_with_in_distribution_positive():
    # Recall steps of 1/3 at precisions 1, 1, 3/4 (0.5 adds no recall).
    assert metrics.aupr_in(DISTINCT_IN, DISTINCT_OUT) == pytest.approx((1 + 1 + 0.75) / 3)


def test_aupr_out_is_average_precision_with_out_of_distribution_positive():
    # Out ranked by -score: 0.1 O (P 1, R 1/2), 0.4 I, 0.5 O (P 2/3, R 1).
    assert metrics.aupr_out(DISTINCT_IN, DISTINCT_OUT) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_aupr_keeps_tied_scores_in_one_block():
    # In positive: block 1 gives P 2/3 at R 2/3, block 0.5 gives P 3/5 at R 1.
    assert metrics.aupr_in(TIED_IN, TIED_OUT) == pytest.approx(2 / 3 * 2 / 3 + 1 / 3 * 3 / 5)
    # Out positive: 0 O (P 1, R 1/3), block 0.5 (P 2/3, R 2/3), block 1 (P 1/2, R 1).
    assert metrics.aupr_out(TIED_IN, TIED_OUT) == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)


def test_aupr_positive_switch_swaps_and_negates_the_sets():
    rng = np.random.default_rng(2)
    id_scores, ood_scores = rng.normal(1, 1, 30), rng.normal(0, 1, 70)
    assert metrics.aupr(id_scores, ood_scores, positive="out") == pytest.approx(
        metrics.aupr(-ood_scores, -id_scores, positive="in")
    )


def test_fpr_at_95_tpr_with_in_distribution_positive():
    # 95% of 3 in-distribution inputs means all 3: threshold 0.4, which also
    # accepts the out-of-distribution 0.5.
    assert metrics.fpr_at_95_tpr(DISTINCT_IN, DISTINCT_OUT, positive="in") == 0.5


def test_fpr_at_95_tpr_with_out_of_distribution_positive():
    # Rejecting both OOD inputs (score <= 0.5) also rejects the in-distribution 0.4.
    assert metrics.fpr_at_95_tpr(DISTINCT_IN, DISTINCT_OUT, positive="out") == pytest.approx(
        1 / 3
    )


def test_fpr_at_95_tpr_takes_a_tied_block_whole():
    # In positive: the block at 1 reaches TPR 2/3, the block at 0.5 reaches 1
    # and brings 2 of 3 OOD inputs with it.
    assert metrics.fpr_at_95_tpr(TIED_IN, TIED_OUT, positive="in") == pytest.approx(2 / 3)
    # Out positive: TPR 1/3, 2/3, then 1 only once the block at 1 is rejected.
    assert metrics.fpr_at_95_tpr(TIED_IN, TIED_OUT, positive="out") == 1.0


def test_fpr_at_tpr_uses_the_first_threshold_reaching_the_rate_without_interpolation():
    id_scores = np.arange(100, 0, -1.0)  # 100 .. 1
    ood_scores = np.arange(100, 0, -1.0) - 0.5  # interleaved: 99.5 .. 0.5
    # 95 in-distribution inputs need threshold 6, which accepts OOD 99.5 .. 6.5.
    assert metrics.fpr_at_tpr(id_scores, ood_scores, tpr=0.95) == pytest.approx(94 / 100)
    assert metrics.fpr_at_tpr(id_scores, ood_scores, tpr=0.9) == pytest.approx(89 / 100)


def test_perfect_separation_and_complete_ties_give_the_extreme_values():
    assert metrics.auroc([3, 4], [1, 2]) == 1.0
    assert metrics.aupr_in([3, 4], [1, 2]) == 1.0
    assert metrics.aupr_out([3, 4], [1, 2]) == 1.0
    assert metrics.fpr_at_95_tpr([3, 4], [1, 2]) == 0.0
    # All scores equal: one block, chance level.
    assert metrics.auroc([1, 1, 1], [1]) == 0.5
    assert metrics.aupr_in([1, 1, 1], [1]) == pytest.approx(3 / 4)
    assert metrics.aupr_out([1, 1, 1], [1]) == pytest.approx(1 / 4)
    assert metrics.fpr_at_95_tpr([1, 1, 1], [1]) == 1.0


def test_metrics_reject_bad_inputs_with_clear_errors():
    with pytest.raises(ValueError, match="NaN"):
        metrics.auroc([0.1, np.nan], [0.2])
    with pytest.raises(ValueError, match="empty"):
        metrics.auroc([], [0.2])
    with pytest.raises(ValueError, match="positive"):
        metrics.aupr([0.1], [0.2], positive="ood")
    with pytest.raises(ValueError, match="tpr"):
        metrics.fpr_at_tpr([0.1], [0.2], tpr=95)
