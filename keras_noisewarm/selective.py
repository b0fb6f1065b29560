"""Selective prediction: how the error falls when a classifier may abstain.

A classifier that answers only its most confident inputs and abstains on
the rest trades *coverage* (the share answered) for *risk* (the error rate
among the answered). The risk-coverage curve (El-Yaniv & Wiener, 2010)
draws that trade when the inputs are answered in order of falling
confidence (the top-label probability); its area, the AURC (Geifman et al.,
2018), summarises it: lower is better. The excess AURC (E-AURC) subtracts
the AURC of a perfect ranking with the same errors (every mistake ranked
below every right answer), so that it measures the ranking alone, not the
accuracy.

Conventions:

- The model answers its `k` most confident inputs, `k = 1..N`; the risk at
  coverage `k / N` is the share of errors among them, and the AURC is the
  mean of the `N` risks (Geifman et al.'s definition, as in most libraries).
- Ties in confidence are never split by an arbitrary order (which would
  change the AURC with the order of the rows): inputs of equal confidence
  enter in a random order, and every number here is its *expected value*
  over those orders. Equivalently, the cumulative number of errors grows
  linearly through a block of tied inputs.
- At a coverage `c` between two positions, the cumulative number of errors
  is interpolated linearly between them: the risk at coverage `c` is
  `errors(c * N) / (c * N)`.

These functions are exact, in float64 NumPy, and take no sample weights.
`keras_noisewarm.metrics.AreaUnderRiskCoverageCurve` and its siblings
stream the same numbers from a fixed-size histogram of confidences.
"""

import keras
import numpy as np

from keras_noisewarm import fitted_layer
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation


def confidences_and_errors(y_true, y_pred, from_logits=None):
    """Top-label confidences and 0/1 errors of a classifier's predictions.

    Args:
        y_true: Integer labels `(N,)` (or one-hot rows `(N, K)`).
        y_pred: Logits or probabilities `(N, K)`, `K >= 2`.
        from_logits: Whether `y_pred` holds logits; `None` detects it (see
            `keras_noisewarm.outputs`).

    Returns:
        `(confidences, errors)`: float64 arrays of shape `(N,)`, the largest
        probability of each row and 1.0 where its class (the first of the
        largest) is not the label.
    """
    outputs = np.asarray(keras.ops.convert_to_numpy(y_pred), dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[1] < 2 or outputs.shape[0] == 0:
        raise ValueError(
            "Expected predictions of shape (num_examples, num_classes) with at least "
            f"one example and 2 classes, got shape {outputs.shape}."
        )
    if not np.all(np.isfinite(outputs)):
        raise ValueError("The predictions contain NaN or Inf.")
    from_logits = outputs_lib.resolve_from_logits(outputs, validation.check_from_logits(from_logits),
                                                  what="the predictions")
    probabilities = outputs_lib.probabilities_of(outputs, from_logits)
    labels = fitted_layer.class_labels(y_true, len(outputs), outputs.shape[1])
    predicted = probabilities.argmax(axis=1)
    return probabilities.max(axis=1), (predicted != labels).astype(np.float64)


def expected_cumulative_errors(confidences, errors):
    """Expected number of errors among the `k` most confident inputs, `k = 0..N`.

    Inputs are ranked by falling confidence; inside a block of equal
    confidences the expected count grows linearly (a random order of the
    tied inputs).

    Args:
        confidences: Float array `(N,)`.
        errors: 0/1 array `(N,)`.

    Returns:
        A float64 array of shape `(N + 1,)`, starting at 0.

    Example:

    >>> # 0.9 is right; the two 0.6s hold one error between them.
    >>> expected_cumulative_errors([0.9, 0.6, 0.6], [0, 1, 0]).tolist()
    [0.0, 0.0, 0.5, 1.0]
    """
    confidences = np.asarray(confidences, dtype=np.float64).reshape(-1)
    errors = np.asarray(errors, dtype=np.float64).reshape(-1)
    if confidences.shape != errors.shape or confidences.size == 0:
        raise ValueError(
            f"Need as many errors as confidences (and at least one), got shapes "
            f"{confidences.shape} and {errors.shape}."
        )
    order = np.argsort(-confidences, kind="stable")
    confidences, errors = confidences[order], errors[order]
    # Block b spans positions starts[b] .. ends[b] - 1 of the ranking.
    starts = np.flatnonzero(np.r_[True, confidences[1:] != confidences[:-1]])
    ends = np.r_[starts[1:], len(confidences)]
    block_errors = np.add.reduceat(errors, starts)
    errors_before = np.r_[0.0, np.cumsum(block_errors)[:-1]]
    sizes = ends - starts
    block = np.repeat(np.arange(len(starts)), sizes)
    inside = np.arange(1, len(confidences) + 1) - starts[block]
    cumulative = errors_before[block] + inside * block_errors[block] / sizes[block]
    return np.r_[0.0, cumulative]


def risk_coverage_curve(y_true, y_pred, from_logits=None):
    """The risk at every coverage `k / N`, `k = 1..N`.

    Args:
        y_true: Integer labels `(N,)`.
        y_pred: Logits or probabilities `(N, K)`.
        from_logits: Whether `y_pred` holds logits; `None` detects it.

    Returns:
        `(coverage, risk)`: float64 arrays of shape `(N,)`, coverage rising
        from `1 / N` to 1; the risk at coverage 1 is the error rate.

    Example:

    >>> coverage, risk = risk_coverage_curve([0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> coverage.round(3).tolist(), risk.round(3).tolist()
    ([0.333, 0.667, 1.0], [0.0, 0.5, 0.333])
    """
    cumulative = expected_cumulative_errors(*confidences_and_errors(y_true, y_pred, from_logits))
    positions = np.arange(1, len(cumulative))
    return positions / positions[-1], cumulative[1:] / positions


def aurc(y_true, y_pred, from_logits=None):
    """Area under the risk-coverage curve: the mean risk over the `N` coverages.

    0 when every prediction is right; the error rate when confidence says
    nothing (every confidence equal); lower is better.

    Args:
        y_true: Integer labels `(N,)`.
        y_pred: Logits or probabilities `(N, K)`.
        from_logits: Whether `y_pred` holds logits; `None` detects it.

    Returns:
        A float in `[0, 1]`.

    Example:

    >>> # Risks 0, 1/2, 1/3 at coverages 1/3, 2/3, 1.
    >>> round(aurc([0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), 4)
    0.2778
    """
    _, risk = risk_coverage_curve(y_true, y_pred, from_logits)
    return float(np.mean(risk))


def optimal_aurc(num_errors, num_examples):
    """The AURC of a perfect ranking: every right answer before every error.

    `(1/N) sum_{k = N - E + 1}^{N} (k - (N - E)) / k` for `E` errors among
    `N` predictions (Geifman et al. approximate it by
    `r + (1 - r) log(1 - r)`, `r = E / N`; this is the exact sum).

    Example:

    >>> round(optimal_aurc(1, 3), 4)  # risks 0, 0, 1/3
    0.1111
    """
    num_examples = validation.check_int("num_examples", num_examples)
    num_errors = validation.check_int("num_errors", int(round(num_errors)), minimum=0)
    if num_errors > num_examples:
        raise ValueError(f"{num_errors} errors among {num_examples} examples.")
    right = num_examples - num_errors
    positions = np.arange(right + 1, num_examples + 1)
    return float(np.sum((positions - right) / positions) / num_examples)


def excess_aurc(y_true, y_pred, from_logits=None):
    """E-AURC: the AURC above that of a perfect ranking with the same errors.

    It separates the ranking from the accuracy: 0 when every error is less
    confident than every right answer, whatever the error rate (Geifman et
    al., 2018).

    Example:

    >>> # The one error is the least confident: a perfect ranking.
    >>> excess_aurc([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    0.0
    """
    confidences, errors = confidences_and_errors(y_true, y_pred, from_logits)
    cumulative = expected_cumulative_errors(confidences, errors)
    area = float(np.mean(cumulative[1:] / np.arange(1, len(cumulative))))
    return max(area - optimal_aurc(errors.sum(), len(errors)), 0.0)


def risk_at_coverage(y_true, y_pred, coverage, from_logits=None):
    """The error rate among the `coverage * N` most confident predictions.

    Args:
        y_true: Integer labels `(N,)`.
        y_pred: Logits or probabilities `(N, K)`.
        coverage: The share of inputs answered, in `(0, 1]`.
        from_logits: Whether `y_pred` holds logits; `None` detects it.

    Returns:
        A float in `[0, 1]`.
    """
    coverage = validation.check_number("coverage", coverage, minimum=0.0, maximum=1.0, strict=False)
    if coverage == 0.0:
        raise ValueError("`coverage` must be above 0: answering nothing has no risk to measure.")
    cumulative = expected_cumulative_errors(*confidences_and_errors(y_true, y_pred, from_logits))
    position = coverage * (len(cumulative) - 1)
    errors = np.interp(position, np.arange(len(cumulative)), cumulative)
    return float(errors / position)


def selective_accuracy(y_true, y_pred, coverage, from_logits=None):
    """Accuracy among the `coverage * N` most confident predictions.

    `1 - risk_at_coverage(...)`: the accuracy of a model that abstains on
    the `1 - coverage` least confident inputs.

    Example:

    >>> outputs = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]]
    >>> selective_accuracy([0, 1, 1, 0], outputs, coverage=0.5)  # 0.9 right, 0.8 wrong
    0.5
    """
    return 1.0 - risk_at_coverage(y_true, y_pred, coverage, from_logits)
