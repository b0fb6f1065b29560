"""Summaries and tests over independently seeded networks.

The paper compares networks that share an initial seed (with vs without
warm-up) with paired two-sided Wilcoxon signed-rank tests, and independent
samples with Mann-Whitney U tests.
"""

import dataclasses

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Summary:
    """Median and spread of one metric over seeds."""

    median: float
    q25: float
    q75: float
    count: int

    def __str__(self):
        return f"{self.median:.4f} [{self.q25:.4f}, {self.q75:.4f}]"


def summarize(values):
    """Median and interquartile range of `values` (NaNs are an error)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0 or not np.all(np.isfinite(values)):
        raise ValueError(f"Need finite values to summarise, got {values!r}.")
    q25, median, q75 = np.percentile(values, [25, 50, 75])
    return Summary(float(median), float(q25), float(q75), int(values.size))


def paired_wilcoxon(first, second):
    """Two-sided Wilcoxon signed-rank p-value of paired samples.

    Pairs with equal values carry no information about the direction and
    are dropped (scipy's default `zero_method="wilcox"`); when every pair is
    equal the p-value is 1.0 rather than an error.

    Args:
        first: Values of the first condition, one per seed.
        second: Values of the second condition for the same seeds.

    Returns:
        The p-value (exact for small samples without ties, as in scipy).
    """
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(
            f"Paired samples need the same 1-D shape, got {first.shape} and {second.shape}."
        )
    if np.all(first == second):
        return 1.0
    return float(stats.wilcoxon(first, second, alternative="two-sided").pvalue)


def mann_whitney(first, second):
    """Two-sided Mann-Whitney U p-value of independent samples."""
    return float(
        stats.mannwhitneyu(
            np.asarray(first, np.float64), np.asarray(second, np.float64),
            alternative="two-sided",
        ).pvalue
    )


def wins(first, second, lower_is_better=True):
    """How many pairs favour `second` over `first`."""
    first = np.asarray(first, dtype=np.float64)
    second = np.asarray(second, dtype=np.float64)
    better = second < first if lower_is_better else second > first
    return int(np.sum(better))
