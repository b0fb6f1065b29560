"""Threshold-free metrics of how well a score separates in- from out-of-distribution.

Conventions, stated once because the field's libraries disagree:

- Scores: **higher means more in-distribution** (as every score in
  `keras_noisewarm.ood` returns). Negate a score that works the other way.
- A detector at threshold `t` calls an input in-distribution when its score
  is `>= t`. Tied scores are never split: the curves only pass through
  thresholds at the distinct score values, so a tie counts half in AUROC and
  enters a precision/recall point as a block, as in scikit-learn's
  `roc_auc_score` and `average_precision_score`.
- "Positive" is the class a detector is asked to find. With `positive="in"`
  (ODIN, energy-score papers) in-distribution inputs are the positives,
  detected by high scores. With `positive="out"` (Hendrycks & Gimpel's code,
  much OOD tooling) out-of-distribution inputs are, detected by low scores.
- AUROC is the same under both conventions; AUPR-In takes in-distribution as
  positive and AUPR-Out takes out-of-distribution as positive, whatever
  `positive` says; FPR at 95% TPR depends on `positive`, so it has the
  switch.
- AUPR is average precision (the step-wise sum `sum_n (R_n - R_{n-1}) P_n`
  over thresholds), not a trapezoidal area, which overestimates.

The metrics run in float64 NumPy on the host: they rank whole evaluation
sets once, after the model has run.
"""

import numpy as np

DEFAULT_TPR = 0.95


def auroc(id_scores, ood_scores):
    """Area under the ROC curve of telling in- from out-of-distribution inputs.

    The probability that a random in-distribution input scores higher than
    a random out-of-distribution one, ties counting one half. It is the same
    whichever class is called positive. 0.5 is chance, 1 a perfect split.

    Args:
        id_scores: Scores of in-distribution inputs, shape `(N_in,)`.
        ood_scores: Scores of out-of-distribution inputs, shape `(N_out,)`.

    Returns:
        A float in `[0, 1]`.

    Example:

    >>> round(auroc([0.9, 0.8, 0.4], [0.5, 0.1]), 4)  # 5 of 6 pairs ordered right
    0.8333
    """
    fpr, tpr = roc_curve(id_scores, ood_scores)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def roc_curve(id_scores, ood_scores):
    """The ROC curve of telling in- from out-of-distribution inputs.

    In-distribution inputs are the positives, detected by high scores (the
    curve of `positive="out"` with negated scores is the same).

    Args:
        id_scores: Scores of in-distribution inputs, shape `(N_in,)`.
        ood_scores: Scores of out-of-distribution inputs, shape `(N_out,)`.

    Returns:
        `(fpr, tpr)`: float arrays from `(0, 0)` to `(1, 1)`, one point per
        distinct score after the origin.

    Example:

    >>> fpr, tpr = roc_curve([0.9, 0.8, 0.4], [0.5, 0.1])
    >>> fpr.tolist(), [round(float(value), 3) for value in tpr]
    ([0.0, 0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.333, 0.667, 0.667, 1.0, 1.0])
    """
    true_positives, false_positives = _operating_points(id_scores, ood_scores, "in")
    tpr = np.concatenate([[0.0], true_positives / true_positives[-1]])
    fpr = np.concatenate([[0.0], false_positives / false_positives[-1]])
    return fpr, tpr


def aupr(id_scores, ood_scores, positive="in"):
    """Area under the precision-recall curve (average precision).

    Args:
        id_scores: Scores of in-distribution inputs, shape `(N_in,)`.
        ood_scores: Scores of out-of-distribution inputs, shape `(N_out,)`.
        positive: `"in"` for in-distribution inputs as positives, detected
            by high scores (AUPR-In); `"out"` for out-of-distribution inputs,
            detected by low scores (AUPR-Out).

    Returns:
        A float in `[0, 1]`; chance level is the positives' share.

    Example:

    >>> aupr([0.9, 0.8, 0.4], [0.5, 0.1], positive="in")  # (1 + 1 + 3/4) / 3
    0.9166666666666666
    """
    true_positives, false_positives = _operating_points(id_scores, ood_scores, positive)
    recall = np.concatenate([[0.0], true_positives / true_positives[-1]])
    precision = true_positives / (true_positives + false_positives)
    return float(np.sum(np.diff(recall) * precision))


def aupr_in(id_scores, ood_scores):
    """AUPR with in-distribution inputs as positives; see `aupr`.

    Example:

    >>> aupr_in([0.9, 0.8, 0.4], [0.5, 0.1])
    0.9166666666666666
    """
    return aupr(id_scores, ood_scores, positive="in")


def aupr_out(id_scores, ood_scores):
    """AUPR with out-of-distribution inputs as positives (low score = OOD); see `aupr`.

    Example:

    >>> aupr_out([0.9, 0.8, 0.4], [0.5, 0.1])  # (1 + 2/3) / 2
    0.8333333333333333
    """
    return aupr(id_scores, ood_scores, positive="out")


def fpr_at_tpr(id_scores, ood_scores, tpr=DEFAULT_TPR, positive="in"):
    """False-positive rate at the first threshold whose true-positive rate reaches `tpr`.

    Thresholds are tried from strict to lenient; the first one that
    detects at least a fraction `tpr` of the positives is used (no
    interpolation), so the result is the lowest false-positive rate among
    operating points with a true-positive rate of at least `tpr`.

    With `positive="in"`: the share of out-of-distribution inputs accepted
    when at least `tpr` of in-distribution inputs are accepted (the ODIN and
    energy-score papers' "FPR at 95% TPR"). With `positive="out"`: the share
    of in-distribution inputs rejected when at least `tpr` of
    out-of-distribution inputs are rejected.

    Args:
        id_scores: Scores of in-distribution inputs, shape `(N_in,)`.
        ood_scores: Scores of out-of-distribution inputs, shape `(N_out,)`.
        tpr: Target true-positive rate in `(0, 1]`.
        positive: `"in"` or `"out"`, which inputs are the positives.

    Returns:
        A float in `[0, 1]`; lower is better.

    Example:

    >>> # Accepting all 3 in-distribution inputs needs threshold 0.4, which
    >>> # also accepts 1 of the 2 out-of-distribution inputs.
    >>> fpr_at_tpr([0.9, 0.8, 0.4], [0.5, 0.1], tpr=0.95)
    0.5
    """
    if not (isinstance(tpr, (int, float)) and 0 < tpr <= 1):
        raise ValueError(f"`tpr` must be a number in (0, 1], got {tpr!r}.")
    true_positives, false_positives = _operating_points(id_scores, ood_scores, positive)
    rates = true_positives / true_positives[-1]
    # The last point has rate exactly 1, so a point reaching `tpr` exists.
    first = np.flatnonzero(rates >= tpr)[0]
    return float(false_positives[first] / false_positives[-1])


def fpr_at_95_tpr(id_scores, ood_scores, positive="in"):
    """`fpr_at_tpr` at a true-positive rate of 95%; see there for the conventions.

    Example:

    >>> fpr_at_95_tpr([0.9, 0.8, 0.4], [0.5, 0.1], positive="out")
    0.3333333333333333
    """
    return fpr_at_tpr(id_scores, ood_scores, tpr=DEFAULT_TPR, positive=positive)


def _operating_points(id_scores, ood_scores, positive):
    """Cumulative true- and false-positive counts at each distinct threshold.

    Returns:
        Two float arrays, one entry per distinct score, from the strictest
        threshold (only the highest-ranked block detected) to the most
        lenient (everything detected).
    """
    id_scores = _validated_scores("id_scores", id_scores)
    ood_scores = _validated_scores("ood_scores", ood_scores)
    if positive == "in":
        detection_scores = np.concatenate([id_scores, ood_scores])
    elif positive == "out":
        detection_scores = -np.concatenate([id_scores, ood_scores])
    else:
        raise ValueError(f"`positive` must be 'in' or 'out', got {positive!r}.")
    is_positive = np.concatenate(
        [np.full(len(id_scores), positive == "in"), np.full(len(ood_scores), positive == "out")]
    )
    order = np.argsort(-detection_scores, kind="stable")
    detection_scores, is_positive = detection_scores[order], is_positive[order]
    # The last example of each block of equal scores closes one threshold.
    block_ends = np.concatenate(
        [np.flatnonzero(np.diff(detection_scores)), [len(detection_scores) - 1]]
    )
    true_positives = np.cumsum(is_positive)[block_ends].astype(np.float64)
    false_positives = (block_ends + 1) - true_positives
    return true_positives, false_positives


def _validated_scores(name, scores):
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if scores.size == 0:
        raise ValueError(f"`{name}` is empty: the metrics need scores of both sets.")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"`{name}` contains NaN or Inf.")
    return scores
