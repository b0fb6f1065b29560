import numpy as np
import pytest
from scipy import stats

from keras_noisewarm import statistics


def test_paired_wilcoxon_equals_scipy_on_random_pairs():
    rng = np.random.default_rng(0)
    for size in (5, 10, 30):
        first = rng.normal(size=size)
        second = first + rng.normal(0.3, 1.0, size=size)
        assert statistics.paired_wilcoxon(first, second) == pytest.approx(
            stats.wilcoxon(first, second).pvalue
        )


def test_paired_wilcoxon_of_ten_consistent_improvements_is_below_one_percent():
    # Exact two-sided p for 10 pairs all in one direction: 2 / 2**10.
    first = np.arange(10.0) + 1.0
    assert statistics.paired_wilcoxon(first, first - 0.5) == pytest.approx(2 / 1024)


def test_paired_wilcoxon_of_identical_samples_is_one():
    assert statistics.paired_wilcoxon([0.2, 0.3], [0.2, 0.3]) == 1.0


def test_paired_wilcoxon_rejects_unpaired_shapes():
    with pytest.raises(ValueError, match="same 1-D shape"):
        statistics.paired_wilcoxon([1.0, 2.0], [1.0])


def test_mann_whitney_equals_scipy():
    rng = np.random.default_rng(1)
    first, second = rng.normal(size=12), rng.normal(0.5, 1.0, size=9)
    assert statistics.mann_whitney(first, second) == pytest.approx(
        stats.mannwhitneyu(first, second, alternative="two-sided").pvalue
    )


def test_summary_is_median_and_quartiles():
    summary = statistics.summarize([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (summary.median, summary.q25, summary.q75, summary.count) == (3.0, 2.0, 4.0, 5)
    assert str(summary) == "3.0000 [2.0000, 4.0000]"
    with pytest.raises(ValueError, match="finite"):
        statistics.summarize([1.0, float("nan")])


def test_wins_counts_pairs_where_the_second_is_better():
    assert statistics.wins([0.3, 0.2, 0.1], [0.2, 0.3, 0.05]) == 2
    assert statistics.wins([0.3, 0.2], [0.4, 0.1], lower_is_better=False) == 1
