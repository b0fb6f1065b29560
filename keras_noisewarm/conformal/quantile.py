"""Finite-sample conformal quantiles of held-out scores.

With `n` held-out scores and the test score exchangeable with them (drawn
the same way, independently), the test score is at most the `k`-th smallest
held-out score with probability at least `k / (n + 1)`. Taking
`k = ceil((n + 1)(1 - alpha))` makes that at least `1 - alpha`, and, when no
two scores tie, at most `1 - alpha + 1 / (n + 1)` on average over
calibration sets (Vovk et al., 2005; Angelopoulos & Bates, 2021).

These run once on the host, in float64 NumPy, after the model has scored
the held-out set.
"""

import fractions
import math

import keras
import numpy as np


def conformal_rank(num_scores, alpha):
    """`k = ceil((n + 1)(1 - alpha))`, the rank of the conformal quantile.

    `alpha` is read as the decimal it is written as (0.1 is 1/10), so that
    float rounding never moves `k` (in floats, `10 * (1 - 0.7)` is
    `3.0000000000000004`, whose ceiling is 4, not 3).

    Args:
        num_scores: Number of held-out scores `n`, at least 1.
        alpha: Miscoverage level in `(0, 1)`.

    Returns:
        An integer in `[1, n + 1]`; `n + 1` means the held-out set is too
        small for level `alpha` (fewer than `1 / alpha - 1` scores).

    Example:

    >>> conformal_rank(99, 0.1)
    90
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise ValueError(f"`alpha` must be a number in (0, 1), got {alpha!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must lie in (0, 1), got {alpha!r}.")
    if not (isinstance(num_scores, (int, np.integer)) and num_scores >= 1):
        raise ValueError(f"Need at least one held-out score, got {num_scores!r}.")
    exact_alpha = fractions.Fraction(str(float(alpha)))
    return math.ceil((num_scores + 1) * (1 - exact_alpha))


def conformal_quantile(scores, alpha):
    """The `ceil((n + 1)(1 - alpha))`-th smallest of `n` held-out scores.

    A new score drawn like the held-out ones is at most this value with
    probability at least `1 - alpha`. Ties are kept together, so with many
    tied scores the probability can exceed `1 - alpha + 1 / (n + 1)`.

    Args:
        scores: Held-out non-conformity scores (lower means more typical),
            any shape; flattened.
        alpha: Miscoverage level in `(0, 1)`.

    Returns:
        A Python float; `inf` when `n < 1 / alpha - 1`, since then no finite
        threshold has the guarantee.

    Example:

    >>> conformal_quantile([0.3, 0.1, 0.2, 0.5], alpha=0.4)  # ceil(5 * 0.6) = 3rd
    0.3
    """
    scores = _validated_scores(scores)
    rank = conformal_rank(len(scores), alpha)
    if rank > len(scores):
        return math.inf
    return float(np.sort(scores)[rank - 1])


def ood_acceptance_threshold(id_scores, alpha):
    """A threshold that accepts at least `1 - alpha` of in-distribution inputs.

    For OOD scores (higher means more in-distribution): the
    `ceil((n + 1)(1 - alpha))`-th *largest* of `n` held-out in-distribution
    scores. A new in-distribution input scores at least this with
    probability at least `1 - alpha` (at most `1 - alpha + 1 / (n + 1)`
    without ties), so accepting `score >= threshold` rejects at most a
    fraction `alpha` of in-distribution inputs. It says nothing about how
    many out-of-distribution inputs are rejected.

    Args:
        id_scores: OOD scores of held-out in-distribution inputs that the
            model was not trained on.
        alpha: Largest allowed share of in-distribution inputs rejected, in
            `(0, 1)`.

    Returns:
        A Python float; `-inf` (accept everything) when `n < 1 / alpha - 1`.

    Example:

    >>> ood_acceptance_threshold([0.9, 0.6, 0.8, 0.7], alpha=0.4)  # 3rd largest
    0.7
    """
    scores = _validated_scores(id_scores)
    rank = conformal_rank(len(scores), alpha)
    if rank > len(scores):
        return -math.inf
    return float(np.sort(scores)[::-1][rank - 1])


def _validated_scores(scores):
    scores = np.asarray(keras.ops.convert_to_numpy(scores), dtype=np.float64).reshape(-1)
    if scores.size == 0:
        raise ValueError("Need at least one held-out score, got none.")
    if np.any(np.isnan(scores)):
        raise ValueError("The held-out scores contain NaN.")
    return scores
