"""Selective prediction as streaming Keras metrics: AURC, E-AURC, selective accuracy.

The exact numbers (`keras_noisewarm.selective`) rank every prediction, which
needs them all in memory. These metrics keep a fixed-size state instead: a
fine histogram of the top-label confidences (`num_bins` equal-width bins of
`[0, 1]`, 10,000 by default), with the weighted count and the weighted
number of errors in each bin. The ranking is then known up to the order
inside a bin, and predictions that share a bin are taken as tied: they enter
in a random order and the result is its expected value, which is how
`keras_noisewarm.selective` treats exact ties too. So:

- where no two distinct confidences share a bin (or all that share one are
  tied), the result equals the exact one;
- otherwise it differs by at most `error_bound()`, computed from the state:
  a bin of weight `m` with `e` errors, reached after a weight `W` of more
  confident predictions, can move the AURC by at most
  `min(e, m - e) * (H(W + m) - H(W)) / N`, `H` the harmonic numbers (the
  cumulative error count inside the bin stays within `min(e, m - e)` of its
  expected value). Bins holding one prediction, or only right or only wrong
  ones, add nothing.

Sample weights act as frequency weights (a weight of 2 counts a prediction
twice; fractional weights are allowed). Inputs are read and checked as by
`ExpectedCalibrationError` (class axis last, integer or one-hot labels,
logits or probabilities, a single column read as a sigmoid output).
"""

import keras
import numpy as np
from keras import ops

from keras_noisewarm import validation
from keras_noisewarm.backend.reductions import bin_sums
from keras_noisewarm.metrics import batches

DEFAULT_NUM_BINS = 10_000
# psi(x + 1) = psi(x + 1 + SHIFT) - sum_{i=1}^{SHIFT} 1 / (x + i): past the
# shift, the asymptotic series of the digamma function is accurate to 1e-10.
_DIGAMMA_SHIFT = 8


def harmonic_difference(before, count):
    """`H(before + count) - H(before)`, harmonic numbers of real arguments.

    `H(x) = psi(x + 1) + gamma`: for integers, `sum_{j=1}^{count}
    1 / (before + j)`. Computed as a sum of positive terms (a shifted
    digamma recurrence and its asymptotic series), so that it keeps its
    relative precision in float32 when `before` is large.

    Args:
        before: Tensor of non-negative weights.
        count: Tensor of non-negative weights, of the same shape.

    Returns:
        A tensor of the same shape.
    """
    shift = float(_DIGAMMA_SHIFT)
    low = before + (shift + 1.0)
    high = low + count
    difference = (
        ops.log1p(ops.divide_no_nan(count, low))
        + count / (2.0 * low * high)
        + count * (low + high) / (12.0 * low**2 * high**2)
        + (1.0 / high**4 - 1.0 / low**4) / 120.0
        - (1.0 / high**6 - 1.0 / low**6) / 252.0
    )
    for step in range(1, _DIGAMMA_SHIFT + 1):
        difference = difference + count / ((before + step) * (before + count + step))
    return difference


def _uniform_edges(num_bins):
    return (np.arange(num_bins + 1) / num_bins).astype("float32")


class _RiskCoverageHistogram(keras.metrics.Metric):
    """A fine histogram of top-label confidences, their weights and errors.

    Subclasses turn it into a number (`_value`). The state: `bin_counts` and
    `bin_errors` of shape `(num_bins,)` and the count of invalid inputs met
    inside compiled steps (which makes `result()` NaN).

    Args:
        num_bins: Number of equal-width confidence bins of the state.
        from_logits: Whether `y_pred` holds logits; `None` detects it per
            batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (`True`) or
            one-hot vectors (`False`).
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(self, num_bins=DEFAULT_NUM_BINS, from_logits=None, sparse_y_true=True,
                 name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_bins = validation.check_int("num_bins", num_bins)
        self.from_logits = validation.check_from_logits(from_logits)
        self.sparse_y_true = validation.check_bool("sparse_y_true", sparse_y_true)
        self.bin_counts = self.add_variable(
            shape=(num_bins,), initializer="zeros", dtype=self.dtype, name="bin_counts")
        self.bin_errors = self.add_variable(
            shape=(num_bins,), initializer="zeros", dtype=self.dtype, name="bin_errors")
        self.input_problems = batches.add_problem_counts(self)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch of predictions to the histogram.

        Args, checks and errors are those of
        `ExpectedCalibrationError.update_state`.
        """
        batch = batches.prepare_batch(y_true, y_pred, sample_weight,
                                      from_logits=self.from_logits,
                                      sparse_y_true=self.sparse_y_true)
        confidences, predicted = batches.top_label(batch)
        confidences = batches.where_valid(batch.valid, confidences)
        errors = ops.cast(ops.not_equal(predicted, batch.labels), "float32")
        interior_edges = ops.convert_to_tensor(_uniform_edges(self.num_bins)[1:-1],
                                               dtype=confidences.dtype)
        bins = ops.searchsorted(interior_edges, confidences, side="right")
        totals = ops.cast(bin_sums([batch.weights, batch.weights * errors], bins,
                                   self.num_bins), self.dtype)
        self.bin_counts.assign_add(totals[:, 0])
        self.bin_errors.assign_add(totals[:, 1])
        batches.record_problems(self, batch.problems, recompute=None)

    def _ranked(self):
        """Counts, errors and the weight and errors before each bin, most confident first."""
        counts = ops.flip(self.bin_counts.value, axis=0)
        errors = ops.flip(self.bin_errors.value, axis=0)
        return counts, errors, ops.cumsum(counts) - counts, ops.cumsum(errors) - errors

    def result(self):
        return batches.result_or_nan(self, ops.cast(self._value(), self.dtype))

    def _value(self):
        raise NotImplementedError

    def curve(self):
        """The risk-coverage curve at the bin boundaries, as NumPy arrays.

        Returns:
            `(coverage, risk)`: one point after each non-empty bin, most
            confident first (inside a bin the curve of tied predictions
            runs between them).
        """
        counts = np.flip(ops.convert_to_numpy(self.bin_counts.value).astype("float64"))
        errors = np.flip(ops.convert_to_numpy(self.bin_errors.value).astype("float64"))
        filled = counts > 0
        covered, erred = np.cumsum(counts)[filled], np.cumsum(errors)[filled]
        if covered.size == 0:
            return np.zeros(0), np.zeros(0)
        return covered / covered[-1], erred / covered

    def error_bound(self):
        """The most the streamed AURC can differ from the exact one, as a float.

        `(1/N) sum_b min(e_b, m_b - e_b) (H(W_b + m_b) - H(W_b))` over the
        bins (see the module docstring); 0 when no bin mixes right and wrong
        predictions. The same bound holds for E-AURC (its optimum is exact).
        """
        counts, errors, before, _ = (np.asarray(ops.convert_to_numpy(value), "float64")
                                     for value in self._ranked())
        total = counts.sum()
        if total == 0:
            return 0.0
        from scipy import special

        spread = np.minimum(errors, counts - errors)
        harmonic = special.digamma(before + counts + 1.0) - special.digamma(before + 1.0)
        return float(np.sum(np.where(counts > 0, spread * harmonic, 0.0)) / total)

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "num_bins": self.num_bins,
            "from_logits": self.from_logits,
            "sparse_y_true": self.sparse_y_true,
        }


def _area(counts, errors, before, errors_before):
    """Sum over bins of the expected risks at the positions each bin covers."""
    per_bin = errors + (errors_before - ops.divide_no_nan(errors * before, counts)) * (
        harmonic_difference(before, counts))
    return ops.sum(ops.where(counts > 0, per_bin, 0.0))


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class AreaUnderRiskCoverageCurve(_RiskCoverageHistogram):
    """AURC: the mean risk of selective prediction over all coverages.

    Predictions are answered most confident first; the risk at coverage
    `k / N` is the error rate among the first `k`, and the AURC is the mean
    of the `N` risks (Geifman et al., 2018): lower is better, 0 when every
    prediction is right, the error rate when confidence says nothing. Ties
    count as a random order (expected value). See the module docstring for
    the state and how close the result is to `keras_noisewarm.selective.aurc`
    (`error_bound()`).

    Args:
        num_bins: Equal-width confidence bins of the state (default 10,000).
        from_logits: Whether `y_pred` holds logits; `None` (default) detects
            it per batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        name: Name of the metric instance (default `"aurc"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = AreaUnderRiskCoverageCurve()
    >>> # Confidences 0.9 (right), 0.8 (wrong), 0.7 (right): risks 0, 1/2, 1/3.
    >>> metric.update_state([0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> round(float(metric.result()), 4)
    0.2778
    """

    def __init__(self, num_bins=DEFAULT_NUM_BINS, from_logits=None, sparse_y_true=True,
                 name="aurc", dtype=None):
        super().__init__(num_bins=num_bins, from_logits=from_logits,
                         sparse_y_true=sparse_y_true, name=name, dtype=dtype)

    def _value(self):
        counts, errors, before, errors_before = self._ranked()
        return ops.divide_no_nan(_area(counts, errors, before, errors_before), ops.sum(counts))


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class ExcessAreaUnderRiskCoverageCurve(_RiskCoverageHistogram):
    """E-AURC: the AURC above that of a perfect ranking with the same errors.

    `AURC - AURC*`, where `AURC*` ranks every right prediction above every
    error (Geifman et al., 2018): it measures how well confidence ranks
    mistakes last, whatever the accuracy; 0 is a perfect ranking. See
    `AreaUnderRiskCoverageCurve` and the module docstring.

    Args:
        num_bins: Equal-width confidence bins of the state (default 10,000).
        from_logits: Whether `y_pred` holds logits; `None` (default) detects it.
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        name: Name of the metric instance (default `"e_aurc"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = ExcessAreaUnderRiskCoverageCurve()
    >>> # The error (0.8) is ranked above a right answer (0.7): risks 0, 1/2,
    >>> # 1/3 against 0, 0, 1/3 for the perfect ranking.
    >>> metric.update_state([0, 1, 1], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> round(float(metric.result()), 4)
    0.1667
    """

    def __init__(self, num_bins=DEFAULT_NUM_BINS, from_logits=None, sparse_y_true=True,
                 name="e_aurc", dtype=None):
        super().__init__(num_bins=num_bins, from_logits=from_logits,
                         sparse_y_true=sparse_y_true, name=name, dtype=dtype)

    def _value(self):
        counts, errors, before, errors_before = self._ranked()
        total, wrong = ops.sum(counts), ops.sum(errors)
        right = total - wrong
        # The perfect ranking: a block of right answers, then one of errors.
        optimal = wrong - right * harmonic_difference(right, wrong)
        excess = _area(counts, errors, before, errors_before) - ops.where(wrong > 0, optimal, 0.0)
        return ops.maximum(ops.divide_no_nan(excess, total), 0.0)


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class SelectiveAccuracy(_RiskCoverageHistogram):
    """Accuracy among the `coverage` share of most confident predictions.

    The accuracy of a model that abstains on its `1 - coverage` least
    confident inputs. Between two positions the cumulative number of errors
    is interpolated linearly, and ties count as a random order, as in
    `keras_noisewarm.selective.selective_accuracy`; with the histogram state,
    predictions sharing a bin are tied, so the result may differ from the
    exact one by at most `min(e_b, m_b - e_b) / (coverage * N)` for the bin
    `b` where the coverage is reached.

    Args:
        coverage: Share of inputs answered, in `(0, 1]` (default 0.8).
        num_bins: Equal-width confidence bins of the state (default 10,000).
        from_logits: Whether `y_pred` holds logits; `None` (default) detects it.
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        name: Name of the metric instance (default `"selective_accuracy"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = SelectiveAccuracy(coverage=0.5)
    >>> # The two most confident of four: 0.9 (right) and 0.8 (wrong).
    >>> metric.update_state([0, 1, 1, 0], [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    >>> float(metric.result())
    0.5
    """

    def __init__(self, coverage=0.8, num_bins=DEFAULT_NUM_BINS, from_logits=None,
                 sparse_y_true=True, name="selective_accuracy", dtype=None):
        super().__init__(num_bins=num_bins, from_logits=from_logits,
                         sparse_y_true=sparse_y_true, name=name, dtype=dtype)
        self._direction = "up"
        self.coverage = validation.check_number("coverage", coverage, minimum=0.0, maximum=1.0,
                                                strict=False)
        if self.coverage == 0.0:
            raise ValueError("`coverage` must be above 0: answering nothing has no accuracy.")

    def _value(self):
        counts, errors, before, errors_before = self._ranked()
        target = self.coverage * ops.sum(counts)
        covered = before + counts
        # The first bin whose end reaches the target weight.
        index = ops.minimum(ops.sum(ops.cast(ops.less(covered, target), "int32")),
                            self.num_bins - 1)
        inside = target - ops.take(before, index)
        wrong = ops.take(errors_before, index) + ops.divide_no_nan(
            inside * ops.take(errors, index), ops.take(counts, index))
        return ops.divide_no_nan(target - wrong, target)

    def get_config(self):
        config = super().get_config()
        config["coverage"] = self.coverage
        return config
