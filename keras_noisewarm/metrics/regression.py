"""Calibration of regression models that predict a distribution.

A regression model that states its uncertainty predicts, for every input, a
distribution of the target: here a Gaussian `N(mu, sigma^2)` (a mean head
and a variance head, trained with a Gaussian negative log-likelihood), or
the two bounds of a central interval (quantile regression).

What *calibrated* means for such a model: its stated probabilities come
true as frequencies. For every level `p`, the target falls at or below the
predicted `p`-quantile `F^-1(p)` in a fraction `p` of the cases (Kuleshov et
al., 2018), so that its central 90% intervals hold 90% of the targets; and
the predictions that state a spread `sigma` miss by `sigma` on average, root
mean square (Levi et al., 2019). Calibration says the spread is honest, not
that it is small: a model that predicts the targets' overall mean and
spread for every input is calibrated and useless. Read these metrics beside
the error of the mean (RMSE) and the Gaussian negative log-likelihood,
which rewards both honesty and sharpness.

The metrics are streaming `keras.metrics.Metric`s with fixed-size states
(sums over bins), usable in `model.compile(metrics=[...])` and on their
own; each has a NumPy function of the same name in lower case
(`expected_normalized_calibration_error`, ...) that computes the same
number from whole arrays in float64.

Inputs (every metric here):

- `y_pred` has `2 * D` values on its last axis for `D` targets: the first
  `D` are the means (or, for `IntervalCoverage(output="bounds")`, the lower
  bounds), the last `D` the spreads (the upper bounds). For one target
  this is a `Dense(2)` head: `y_pred[..., 0]` the mean, `y_pred[..., 1]`
  the spread. What the spread is, is `spread`: `"variance"` (default),
  `"log_variance"` or `"std"`.
- `y_true` has shape `batch_shape + (D,)`, or `batch_shape` when `D = 1`.
  Every axis but the last is a batch axis, and each of the `D` components
  of each example counts as one prediction.
- `sample_weight` is a scalar, of shape `batch_shape` (one weight per
  example, for all its components), or `batch_shape + (D,)`.

Targets and means must be finite and a variance or standard deviation
positive: eagerly, `update_state` raises `ValueError` naming the first bad
prediction; inside a compiled step the bad predictions are left out and
counted (`input_problems`), and `result()` is NaN with one `RuntimeWarning`,
as for the classification metrics (`keras_noisewarm.metrics.batches`).
"""

import collections
import math

import keras
import numpy as np
from keras import ops
from scipy import special

from keras_noisewarm import validation
from keras_noisewarm.backend.compilation import values_are_concrete
from keras_noisewarm.backend.reductions import bin_sums
from keras_noisewarm.metrics import batches
from keras_noisewarm.metrics.calibration import equal_mass_groups

SPREADS = ("variance", "log_variance", "std")
INTERVAL_OUTPUTS = ("gaussian", "bounds")
QUANTILE_NORMS = ("l1", "l2", "max")
# The kinds of input problems counted inside compiled steps; all reject.
PROBLEMS = ("non_finite_targets", "non_finite_spreads", "non_positive_spreads")
DEFAULT_STD_RANGE = (1e-6, 1e6)
_LOG_TWO_PI = math.log(2.0 * math.pi)

RegressionBatch = collections.namedtuple(
    "RegressionBatch", ["targets", "means", "spreads", "weights", "valid", "problems"]
)
RegressionBatch.__doc__ = """One batch as flat predictions; see `prepare_regression_batch`."""


def prepare_regression_batch(y_true, y_pred, sample_weight, spread):
    """Flattens one batch of a distributional regression into predictions.

    Args:
        y_true: Targets of shape `batch_shape + (D,)`, or `batch_shape`
            when `D = 1`.
        y_pred: Shape `batch_shape + (2 * D,)`: the `D` means (or lower
            bounds), then the `D` spreads (or upper bounds).
        sample_weight: `None`, a scalar, or weights of shape `batch_shape`
            or `batch_shape + (D,)` (a trailing 1 allowed).
        spread: `"variance"`, `"log_variance"`, `"std"`, or `None` for
            interval bounds (the second half is only checked to be finite).

    Returns:
        A `RegressionBatch` of float32 tensors of shape `(predictions,)`:
        `targets`, `means` (the first half) and `spreads` (the second half,
        as given), `weights` (0 where invalid), `valid` (a boolean mask, or
        `None` when values are concrete: every prediction was checked) and
        `problems` (counts of `PROBLEMS`, `None` when concrete). Invalid
        predictions hold a target and mean of 0 and a spread of 1, so that
        no NaN reaches the sums.

    Raises:
        ValueError: If the shapes do not fit, the batch is empty, or, when
            values are concrete, any prediction is invalid.
    """
    y_pred = ops.cast(ops.stop_gradient(ops.convert_to_tensor(y_pred)), "float32")
    y_true = ops.cast(ops.convert_to_tensor(y_true), "float32")
    num_targets = _check_shapes(tuple(y_true.shape), tuple(y_pred.shape))
    first = y_pred[..., :num_targets]
    targets = batches.flatten(ops.reshape(y_true, ops.shape(first)))
    means = batches.flatten(first)
    spreads = batches.flatten(y_pred[..., num_targets:])
    # One weight per component: a per-example weight applies to all D.
    weights = batches.flat_weights(sample_weight, ops.expand_dims(first, axis=-1))

    target_finite = ops.isfinite(targets)
    prediction_finite = ops.logical_and(ops.isfinite(means), ops.isfinite(spreads))
    valid = ops.logical_and(target_finite, prediction_finite)
    if spread in ("variance", "std"):
        valid = ops.logical_and(valid, ops.greater(spreads, 0.0))
    if values_are_concrete(valid):
        if not bool(ops.convert_to_numpy(ops.all(valid))):
            raise_for_invalid_predictions(
                ops.convert_to_numpy(targets),
                ops.convert_to_numpy(means),
                ops.convert_to_numpy(spreads),
                spread,
            )
        return RegressionBatch(targets, means, spreads, weights, None, None)
    problems = ops.stack([
        _count(ops.logical_not(target_finite)),
        _count(ops.logical_and(target_finite, ops.logical_not(prediction_finite))),
        _count(ops.logical_and(ops.logical_and(target_finite, prediction_finite),
                               ops.logical_not(valid))),
    ])
    return RegressionBatch(
        ops.where(valid, targets, 0.0),
        ops.where(valid, means, 0.0),
        ops.where(valid, spreads, 1.0),
        ops.where(valid, weights, 0.0),
        valid,
        problems,
    )


def raise_for_invalid_predictions(targets, means, spreads, spread):
    """Raises a `ValueError` naming the first invalid prediction (NumPy inputs)."""
    bad = np.flatnonzero(~np.isfinite(targets))
    if bad.size:
        raise ValueError(
            f"y_true holds {targets[bad[0]]} at prediction {bad[0]} (of the flattened "
            f"targets); regression targets must be finite ({bad.size} are not)."
        )
    bad = np.flatnonzero(~(np.isfinite(means) & np.isfinite(spreads)))
    if bad.size:
        raise ValueError(
            f"y_pred holds NaN or Inf at prediction {bad[0]}: mean (first half) "
            f"{means[bad[0]]}, spread (second half) {spreads[bad[0]]}."
        )
    bad = np.flatnonzero(spreads <= 0)
    raise ValueError(
        f"y_pred holds a {spread} of {spreads[bad[0]]:g} at prediction {bad[0]} (its "
        f"second half); with spread={spread!r} it must be positive ({bad.size} are "
        "not). End the spread head in a softplus, or pass spread='log_variance' if "
        "the model outputs a log-variance."
    )


def _count(mask):
    return ops.sum(ops.cast(mask, "float32"))


def _check_shapes(label_shape, prediction_shape):
    """`D`, the number of targets per example, after checking both shapes."""
    if len(prediction_shape) < 2 or prediction_shape[-1] is None:
        raise ValueError(
            "y_pred needs a known last axis of 2 * D values (D means, then D "
            f"spreads), batch first. Received shape {prediction_shape}."
        )
    if prediction_shape[-1] % 2:
        raise ValueError(
            f"y_pred has {prediction_shape[-1]} values on its last axis; a mean and "
            "a spread per target make an even number (D means, then D spreads)."
        )
    if any(dim == 0 for dim in prediction_shape[:-1]):
        raise ValueError(f"y_pred of shape {prediction_shape} holds no predictions.")
    num_targets = prediction_shape[-1] // 2
    batch_shape = prediction_shape[:-1]
    expected = batch_shape + (num_targets,)

    def same(shape, other):
        return len(shape) == len(other) and all(
            a is None or b is None or a == b for a, b in zip(shape, other)
        )

    if same(label_shape, expected) or (num_targets == 1 and same(label_shape, batch_shape)):
        return num_targets
    raise ValueError(
        f"y_true of shape {label_shape} does not fit y_pred of shape "
        f"{prediction_shape}: with {num_targets} target(s) per example y_true must "
        f"have shape {expected}" + (f" or {batch_shape}" if num_targets == 1 else "")
        + "."
    )


def gaussian_moments(spreads, spread):
    """`(variance, log_variance, std)` of spreads given as `spread` (tensors)."""
    if spread == "variance":
        log_variance = ops.log(spreads)
        return spreads, log_variance, ops.sqrt(spreads)
    if spread == "log_variance":
        return ops.exp(spreads), spreads, ops.exp(spreads / 2.0)
    return spreads**2, 2.0 * ops.log(spreads), spreads


def _standard_normal_cdf(values):
    return 0.5 * (1.0 + ops.erf(values / math.sqrt(2.0)))


class _RegressionMetric(keras.metrics.Metric):
    """Reads batches of mean-and-spread predictions; subclasses add them up.

    Args:
        spread: What the second half of `y_pred` holds: `"variance"`,
            `"log_variance"` or `"std"`.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(self, spread="variance", name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.spread = validation.check_choice("spread", spread, SPREADS)
        self.input_problems = batches.add_problem_counts(self, kinds=PROBLEMS)

    def _read_spread(self):
        return self.spread

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch of predictions.

        Args:
            y_true: Targets of shape `batch_shape + (D,)`, or `batch_shape`
                for one target.
            y_pred: `batch_shape + (2 * D,)`: the means, then the spreads.
            sample_weight: Optional weights, a scalar, of shape
                `batch_shape`, or of shape `batch_shape + (D,)`. They act as
                frequency weights.

        Raises:
            ValueError: On shapes that do not fit, and, where the values are
                concrete (eager execution), on non-finite targets or
                predictions or a spread that is not positive; while traced
                these are left out and make `result()` NaN.
        """
        batch = prepare_regression_batch(y_true, y_pred, sample_weight, self._read_spread())
        self._accumulate(batch)
        batches.record_problems(self, batch.problems, recompute=None)

    def result(self):
        value = ops.cast(self._value(), self.dtype)
        return batches.result_or_nan(self, value, kinds=PROBLEMS)

    def _accumulate(self, batch):
        raise NotImplementedError

    def _value(self):
        raise NotImplementedError

    def _add(self, variable, value):
        variable.assign_add(ops.cast(value, self.dtype))

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "spread": self.spread}


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class GaussianNegativeLogLikelihood(_RegressionMetric):
    """Mean negative log-likelihood of the targets under the predicted Gaussians.

    `0.5 * (log(2 pi sigma^2) + (y - mu)^2 / sigma^2)` averaged over
    predictions (weighted by `sample_weight`), in nats, constant included,
    so that it is the full NLL of the literature (PyTorch's `GaussianNLLLoss`
    leaves the constant out unless `full=True`). A proper scoring rule: it
    is lowest for the true distribution, and rewards an honest and a small
    spread. It depends on the targets' units: scaling the targets by `c`
    adds `log c`.

    Args:
        spread: What the second half of `y_pred` holds: `"variance"`
            (default), `"log_variance"` or `"std"`.
        name: Name of the metric instance (default `"gaussian_nll"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = GaussianNegativeLogLikelihood()
    >>> # Mean 0, variance 1, target 0: 0.5 * log(2 pi) = 0.9189.
    >>> metric.update_state([0.0], [[0.0, 1.0]])
    >>> round(float(metric.result()), 4)
    0.9189
    """

    def __init__(self, spread="variance", name="gaussian_nll", dtype=None):
        super().__init__(spread=spread, name=name, dtype=dtype)
        self._direction = "down"
        self.total = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="count")

    def _accumulate(self, batch):
        variance, log_variance, _ = gaussian_moments(batch.spreads, self.spread)
        scores = 0.5 * (_LOG_TWO_PI + log_variance + (batch.targets - batch.means) ** 2 / variance)
        self._add(self.total, ops.sum(scores * batch.weights))
        self._add(self.count, ops.sum(batch.weights))

    def _value(self):
        return ops.divide_no_nan(self.total.value, self.count.value)


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class ExpectedNormalizedCalibrationError(_RegressionMetric):
    """Expected normalised calibration error (ENCE; Levi et al., 2019).

    The predictions are sorted by their predicted standard deviation and
    split into `num_bins` bins of equal weight. In each bin `b` the root
    mean variance `RMV_b = sqrt(mean(sigma^2))` (what the model says its
    error is) is compared with the root mean squared error
    `RMSE_b = sqrt(mean((y - mu)^2))` (what it is):

    ```python
    ence = (1 / B) * sum_b |RMV_b - RMSE_b| / RMV_b
    ```

    over the `B` bins that hold predictions. 0 is calibrated; a model whose
    variances are 4 times too large (standard deviations twice the errors)
    has ENCE 0.5, one whose variances are 4 times too small ENCE 1. The
    bins are equal-mass because the spread of a model's predictions is
    rarely uniform: most of them share a narrow range of `sigma`.

    Exact equal-mass bins need every prediction in memory. This metric
    keeps a fixed histogram instead: `num_histogram_bins` log-spaced bins of
    `sigma` over `std_range` (a standard deviation outside it is counted in
    the end bin), holding per bin the weighted count, the sum of variances
    and the sum of squared errors. `result()` groups consecutive fine bins
    into `num_bins` bins of nearly equal weight, as
    `AdaptiveCalibrationError` does (`equal_mass_groups`): predictions whose
    `sigma` falls in one fine bin (within 0.14% of each other by default)
    are never split, so a bin may hold a few more or fewer than `N / B`, and
    predictions with exactly the same `sigma` all share one bin (then fewer
    than `num_bins` bins hold predictions). The NumPy
    `expected_normalized_calibration_error` computes the exact version, to
    which this one converges as the fine bins shrink.

    Args:
        num_bins: Number of equal-mass bins (default 10).
        num_histogram_bins: Number of fine log-spaced bins of the state
            (default 20,000).
        std_range: `(lowest, highest)` standard deviation resolved by the
            histogram (default `(1e-6, 1e6)`, in the targets' units).
        spread: What the second half of `y_pred` holds: `"variance"`
            (default), `"log_variance"` or `"std"`.
        name: Name of the metric instance (default `"ence"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = ExpectedNormalizedCalibrationError(num_bins=2, spread="std")
    >>> # Bin of sigma 1: errors 1 and 3, RMSE sqrt(5); bin of sigma 2:
    >>> # errors 2 and 2, RMSE 2. ENCE = (|1 - sqrt 5| / 1 + 0) / 2.
    >>> metric.update_state(
    ...     [1.0, 3.0, 2.0, -2.0],
    ...     [[0.0, 1.0], [0.0, 1.0], [0.0, 2.0], [0.0, 2.0]],
    ... )
    >>> round(float(metric.result()), 4)
    0.618
    """

    def __init__(
        self,
        num_bins=10,
        num_histogram_bins=20_000,
        std_range=DEFAULT_STD_RANGE,
        spread="variance",
        name="ence",
        dtype=None,
    ):
        super().__init__(spread=spread, name=name, dtype=dtype)
        self._direction = "down"
        self.num_bins = validation.check_int("num_bins", num_bins)
        self.num_histogram_bins = validation.check_int("num_histogram_bins", num_histogram_bins)
        self.std_range = _std_range(std_range)
        shape = (self.num_histogram_bins,)
        self.bin_counts = self.add_variable(shape=shape, initializer="zeros", dtype=self.dtype,
                                            name="bin_counts")
        self.bin_variance_sums = self.add_variable(shape=shape, initializer="zeros",
                                                   dtype=self.dtype, name="bin_variance_sums")
        self.bin_squared_error_sums = self.add_variable(shape=shape, initializer="zeros",
                                                        dtype=self.dtype,
                                                        name="bin_squared_error_sums")

    def _accumulate(self, batch):
        variance, log_variance, _ = gaussian_moments(batch.spreads, self.spread)
        low, high = (math.log(value) for value in self.std_range)
        # log(sigma) = log(variance) / 2, on the log-spaced grid.
        position = (log_variance / 2.0 - low) * (self.num_histogram_bins / (high - low))
        bins = ops.cast(ops.clip(ops.floor(position), 0, self.num_histogram_bins - 1), "int32")
        weights = batch.weights
        squared_errors = (batch.targets - batch.means) ** 2
        totals = bin_sums(
            [weights, weights * variance, weights * squared_errors], bins, self.num_histogram_bins
        )
        for column, variable in enumerate(
            (self.bin_counts, self.bin_variance_sums, self.bin_squared_error_sums)
        ):
            self._add(variable, totals[:, column])

    def _grouped(self):
        counts = self.bin_counts.value
        groups = equal_mass_groups(counts, self.num_bins)
        return tuple(
            ops.segment_sum(values, groups, num_segments=self.num_bins)
            for values in (counts, self.bin_variance_sums.value, self.bin_squared_error_sums.value)
        )

    def _value(self):
        counts, variance_sums, squared_error_sums = self._grouped()
        rmv = ops.sqrt(ops.divide_no_nan(variance_sums, counts))
        rmse = ops.sqrt(ops.divide_no_nan(squared_error_sums, counts))
        filled = ops.greater(counts, 0.0)
        per_bin = ops.where(filled, ops.divide_no_nan(ops.abs(rmv - rmse), rmv), 0.0)
        return ops.divide_no_nan(ops.sum(per_bin), ops.sum(ops.cast(filled, per_bin.dtype)))

    def bin_statistics(self):
        """The equal-mass bins of the predictions seen so far, as NumPy arrays.

        This is what `keras_noisewarm.plot.variance_reliability_diagram`
        draws.

        Returns:
            A dict of arrays with one entry per bin: `"lower"` and `"upper"`
            standard deviations spanned by its fine bins, `"count"`
            (weighted number of predictions), `"rmv"` (root mean variance)
            and `"rmse"` (root mean squared error). Empty bins have a count
            of 0 and NaN elsewhere.
        """
        counts, variance_sums, squared_error_sums = (
            ops.convert_to_numpy(values).astype("float64") for values in self._grouped()
        )
        fine_counts = ops.convert_to_numpy(self.bin_counts.value)
        groups = ops.convert_to_numpy(equal_mass_groups(self.bin_counts.value, self.num_bins))
        edges = np.geomspace(*self.std_range, self.num_histogram_bins + 1)
        lower = np.full(self.num_bins, np.nan)
        upper = np.full(self.num_bins, np.nan)
        for group in range(self.num_bins):
            members = np.flatnonzero((groups == group) & (fine_counts > 0))
            if members.size:
                lower[group], upper[group] = edges[members[0]], edges[members[-1] + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            rmv = np.where(counts > 0, np.sqrt(variance_sums / counts), np.nan)
            rmse = np.where(counts > 0, np.sqrt(squared_error_sums / counts), np.nan)
        return {"lower": lower, "upper": upper, "count": counts, "rmv": rmv, "rmse": rmse}

    def get_config(self):
        config = super().get_config()
        config.update(
            num_bins=self.num_bins,
            num_histogram_bins=self.num_histogram_bins,
            std_range=list(self.std_range),
        )
        return config


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class IntervalCoverage(_RegressionMetric):
    """Share of targets inside the predicted central interval of a level.

    For Gaussian predictions (`output="gaussian"`) the interval at `level`
    is `mu +- z sigma` with `z` the `(1 + level) / 2` quantile of the
    standard normal (1.645 for 90%); a calibrated model covers a share
    `level` of the targets, an overconfident one less. With
    `output="bounds"` the model predicts the interval itself, as a quantile
    regression of the `(1 - level) / 2` and `(1 + level) / 2` quantiles
    does: the first half of `y_pred` holds the lower bounds, the second half
    the upper bounds (bounds that cross make an empty interval, which
    covers nothing). A target on a bound is covered.

    Coverage says nothing of the width: `mean_width()` gives the weighted
    mean width of the intervals, so that two models of equal coverage can
    be told apart by their sharpness.

    Args:
        level: The nominal coverage, in `(0, 1)` (default 0.9).
        output: `"gaussian"` (default: means and spreads) or `"bounds"`
            (lower and upper bounds of the interval).
        spread: For Gaussian predictions, what the second half of `y_pred`
            holds: `"variance"` (default), `"log_variance"` or `"std"`.
        name: Name of the metric instance (default `"coverage"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = IntervalCoverage(level=0.9, spread="std")
    >>> # Interval 0 +- 1.645: covers 1.0 and -1.6, not 2.0 or -3.0.
    >>> metric.update_state([1.0, -1.6, 2.0, -3.0], [[0.0, 1.0]] * 4)
    >>> float(metric.result())
    0.5
    >>> bounds = IntervalCoverage(level=0.9, output="bounds")
    >>> bounds.update_state([1.0, 5.0], [[0.0, 2.0], [0.0, 2.0]])
    >>> float(bounds.result()), float(bounds.mean_width())
    (0.5, 2.0)
    """

    def __init__(self, level=0.9, output="gaussian", spread="variance", name="coverage",
                 dtype=None):
        super().__init__(spread=spread, name=name, dtype=dtype)
        self.level = validation.check_fraction("level", level)
        self.output = validation.check_choice("output", output, INTERVAL_OUTPUTS)
        self.z = float(special.ndtri((1.0 + self.level) / 2.0))
        self.covered = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype,
                                         name="covered")
        self.count = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype, name="count")
        self.width_sum = self.add_variable(shape=(), initializer="zeros", dtype=self.dtype,
                                           name="width_sum")

    def _read_spread(self):
        return None if self.output == "bounds" else self.spread

    def _accumulate(self, batch):
        if self.output == "bounds":
            lower, upper = batch.means, batch.spreads
        else:
            _, _, std = gaussian_moments(batch.spreads, self.spread)
            lower, upper = batch.means - self.z * std, batch.means + self.z * std
        inside = ops.logical_and(ops.greater_equal(batch.targets, lower),
                                 ops.less_equal(batch.targets, upper))
        self._add(self.covered, ops.sum(ops.cast(inside, "float32") * batch.weights))
        self._add(self.count, ops.sum(batch.weights))
        self._add(self.width_sum, ops.sum(ops.maximum(upper - lower, 0.0) * batch.weights))

    def _value(self):
        return ops.divide_no_nan(self.covered.value, self.count.value)

    def mean_width(self):
        """Weighted mean width of the intervals seen so far (0 for crossed bounds)."""
        return ops.divide_no_nan(self.width_sum.value, self.count.value)

    def get_config(self):
        config = super().get_config()
        config.update(level=self.level, output=self.output)
        return config


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class IntervalCoverageError(IntervalCoverage):
    """Distance of the interval coverage from its nominal level.

    `|coverage - level|`, with the coverage of `IntervalCoverage` (see there
    for the intervals and the inputs): 0 when the central `level` interval
    holds a share `level` of the targets. `signed_gap()` keeps the sign:
    negative for intervals too narrow (overconfident), positive for
    intervals too wide.

    Args:
        level: The nominal coverage, in `(0, 1)` (default 0.9).
        output: `"gaussian"` (default) or `"bounds"`.
        spread: `"variance"` (default), `"log_variance"` or `"std"`.
        name: Name of the metric instance (default `"coverage_error"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = IntervalCoverageError(level=0.9, spread="std")
    >>> metric.update_state([1.0, -1.6, 2.0, -3.0], [[0.0, 1.0]] * 4)
    >>> round(float(metric.result()), 4), round(float(metric.signed_gap()), 4)
    (0.4, -0.4)
    """

    def __init__(self, level=0.9, output="gaussian", spread="variance", name="coverage_error",
                 dtype=None):
        super().__init__(level=level, output=output, spread=spread, name=name, dtype=dtype)
        self._direction = "down"

    def signed_gap(self):
        """`coverage - level`: negative when the intervals are too narrow."""
        return super()._value() - self.level

    def _value(self):
        # 0 before any prediction, as every metric here.
        empty = ops.equal(self.count.value, 0.0)
        return ops.where(empty, 0.0, ops.abs(self.signed_gap()))


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class QuantileCalibrationError(_RegressionMetric):
    """Quantile calibration error (Kuleshov et al., 2018).

    For levels `p_j = j / (num_levels + 1)`, `j = 1..num_levels` (0.01 to
    0.99 by default), the observed frequency `freq_j` of targets at or below
    the predicted `p_j`-quantile `F^-1(p_j) = mu + sigma Phi^-1(p_j)` is
    compared with `p_j`; equivalently, the probability integral transform
    `PIT = Phi((y - mu) / sigma)` of a calibrated model is uniform, and
    `freq_j` is its empirical CDF at `p_j`:

    ```python
    error = mean_j |freq_j - p_j|           # norm="l1"
    error = sqrt(mean_j (freq_j - p_j)**2)  # norm="l2"
    error = max_j |freq_j - p_j|            # norm="max"
    ```

    The square of the `"l2"` error is Kuleshov et al.'s calibration score
    with equal weights. The state is a histogram of the PIT values over the
    levels (`num_levels + 1` weighted counts), so the result is exact.
    `calibration_curve()` gives the frequencies, which
    `keras_noisewarm.plot.quantile_reliability_diagram` draws.

    Args:
        num_levels: Number of quantile levels (default 99).
        norm: `"l1"` (default), `"l2"` or `"max"`.
        spread: What the second half of `y_pred` holds: `"variance"`
            (default), `"log_variance"` or `"std"`.
        name: Name of the metric instance (default
            `"quantile_calibration_error"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = QuantileCalibrationError(num_levels=3, spread="std")
    >>> # Levels 0.25, 0.5, 0.75; PIT values 0.16, 0.84 (y = -1, 1):
    >>> # frequencies 0.5, 0.5, 0.5, gaps 0.25, 0, 0.25.
    >>> metric.update_state([-1.0, 1.0], [[0.0, 1.0], [0.0, 1.0]])
    >>> round(float(metric.result()), 4)
    0.1667
    """

    def __init__(self, num_levels=99, norm="l1", spread="variance",
                 name="quantile_calibration_error", dtype=None):
        super().__init__(spread=spread, name=name, dtype=dtype)
        self._direction = "down"
        self.num_levels = validation.check_int("num_levels", num_levels)
        self.norm = validation.check_choice("norm", norm, QUANTILE_NORMS)
        self.pit_counts = self.add_variable(
            shape=(self.num_levels + 1,), initializer="zeros", dtype=self.dtype, name="pit_counts"
        )

    def levels(self):
        """The quantile levels `p_j`, a float32 NumPy array."""
        return quantile_levels(self.num_levels)

    def _accumulate(self, batch):
        _, _, std = gaussian_moments(batch.spreads, self.spread)
        pit = _standard_normal_cdf((batch.targets - batch.means) / std)
        # The number of levels below a PIT value: the target is at or below
        # the quantile of every level from that index on.
        levels = ops.convert_to_tensor(self.levels(), dtype=pit.dtype)
        bins = ops.cast(ops.searchsorted(levels, pit, side="left"), "int32")
        totals = bin_sums([batch.weights], bins, self.num_levels + 1)
        self._add(self.pit_counts, totals[:, 0])

    def _frequencies(self):
        counts = self.pit_counts.value
        return ops.divide_no_nan(ops.cumsum(counts)[:-1], ops.sum(counts))

    def _value(self):
        gaps = ops.abs(self._frequencies() - ops.convert_to_tensor(self.levels(), self.dtype))
        empty = ops.equal(ops.sum(self.pit_counts.value), 0.0)
        if self.norm == "l1":
            value = ops.mean(gaps)
        elif self.norm == "l2":
            value = ops.sqrt(ops.mean(gaps**2))
        else:
            value = ops.max(gaps)
        return ops.where(empty, 0.0, value)

    def calibration_curve(self):
        """Expected and observed quantile levels, as NumPy arrays.

        Returns:
            A dict: `"expected"`, the levels `p_j`; `"observed"`, the
            weighted share of targets at or below each predicted quantile
            (NaN before any prediction); `"count"`, the total weight.
        """
        counts = ops.convert_to_numpy(self.pit_counts.value).astype("float64")
        total = counts.sum()
        observed = np.cumsum(counts)[:-1] / total if total > 0 else np.full(self.num_levels, np.nan)
        return {"expected": self.levels().astype("float64"), "observed": observed, "count": total}

    def get_config(self):
        config = super().get_config()
        config.update(num_levels=self.num_levels, norm=self.norm)
        return config


def quantile_levels(num_levels):
    """The levels `j / (num_levels + 1)`, `j = 1..num_levels`, as float32."""
    return (np.arange(1, num_levels + 1) / (num_levels + 1)).astype("float32")


def _std_range(value):
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`std_range` must be a pair (lowest, highest), got {value!r}.") from None
    if not (0.0 < low < high < math.inf):
        raise ValueError(
            f"`std_range` must hold two positive finite numbers, lowest first, got {value!r}."
        )
    return (low, high)


# ----------------------------------------------------------------------------
# The same numbers from whole NumPy arrays, in float64.


def _numpy_predictions(y_true, y_pred, sample_weight, spread):
    """Flat float64 `(targets, first half, second half, weights)`, checked."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    num_targets = _check_shapes(tuple(y_true.shape), tuple(y_pred.shape))
    first = y_pred[..., :num_targets]
    targets = y_true.reshape(first.shape).reshape(-1)
    means = first.reshape(-1)
    spreads = y_pred[..., num_targets:].reshape(-1)
    weights = np.ones(first.shape)
    if sample_weight is not None:
        # Aligned from the left, as the metrics do: a weight per example
        # applies to all its components (and positions).
        weights = np.asarray(sample_weight, dtype=np.float64)
        while weights.ndim and weights.ndim < first.ndim:
            weights = weights[..., None]
        weights = np.broadcast_to(weights, first.shape)
    weights = weights.reshape(-1)
    valid = np.isfinite(targets) & np.isfinite(means) & np.isfinite(spreads)
    if spread in ("variance", "std"):
        valid &= spreads > 0
    if not np.all(valid):
        raise_for_invalid_predictions(targets, means, spreads, spread)
    return targets, means, spreads, weights


def _numpy_moments(spreads, spread):
    if spread == "variance":
        return spreads, np.log(spreads), np.sqrt(spreads)
    if spread == "log_variance":
        return np.exp(spreads), spreads, np.exp(spreads / 2.0)
    return spreads**2, 2.0 * np.log(spreads), spreads


def gaussian_negative_log_likelihood(y_true, y_pred, spread="variance", sample_weight=None):
    """The NumPy twin of `GaussianNegativeLogLikelihood`, from whole arrays.

    Example:

    >>> round(gaussian_negative_log_likelihood([0.0], [[0.0, 1.0]]), 4)
    0.9189
    """
    validation.check_choice("spread", spread, SPREADS)
    targets, means, spreads, weights = _numpy_predictions(y_true, y_pred, sample_weight, spread)
    variance, log_variance, _ = _numpy_moments(spreads, spread)
    scores = 0.5 * (_LOG_TWO_PI + log_variance + (targets - means) ** 2 / variance)
    return float(np.sum(weights * scores) / np.sum(weights))


def expected_normalized_calibration_error(y_true, y_pred, num_bins=10, spread="variance",
                                          sample_weight=None):
    """The exact ENCE of Levi et al. (2019), from whole arrays.

    The predictions are sorted by standard deviation (ties in input order)
    and prediction `i` of the sorted order goes to bin
    `floor(num_bins * (weight before it + half its own weight) / total)`:
    with unit weights, `num_bins` bins of (nearly) equal count.
    `ExpectedNormalizedCalibrationError` approximates this from a
    histogram.

    Example:

    >>> round(expected_normalized_calibration_error(
    ...     [1.0, 3.0, 2.0, -2.0], [[0.0, 1.0], [0.0, 1.0], [0.0, 2.0], [0.0, 2.0]],
    ...     num_bins=2, spread="std"), 4)
    0.618
    """
    validation.check_int("num_bins", num_bins)
    validation.check_choice("spread", spread, SPREADS)
    targets, means, spreads, weights = _numpy_predictions(y_true, y_pred, sample_weight, spread)
    variance, _, std = _numpy_moments(spreads, spread)
    order = np.argsort(std, kind="stable")
    weights, variance = weights[order], variance[order]
    squared_errors = ((targets - means) ** 2)[order]
    total = weights.sum()
    middles = np.cumsum(weights) - weights / 2
    groups = np.minimum(np.floor(middles * num_bins / total), num_bins - 1).astype(int)
    errors = []
    for group in range(num_bins):
        members = groups == group
        count = weights[members].sum()
        if count > 0:
            rmv = np.sqrt(np.sum(weights[members] * variance[members]) / count)
            rmse = np.sqrt(np.sum(weights[members] * squared_errors[members]) / count)
            errors.append(abs(rmv - rmse) / rmv)
    return float(np.mean(errors))


def interval_coverage(y_true, y_pred, level=0.9, output="gaussian", spread="variance",
                      sample_weight=None):
    """The NumPy twin of `IntervalCoverage`, from whole arrays.

    Example:

    >>> interval_coverage([1.0, -1.6, 2.0, -3.0], [[0.0, 1.0]] * 4, spread="std")
    0.5
    """
    level = validation.check_fraction("level", level)
    validation.check_choice("output", output, INTERVAL_OUTPUTS)
    validation.check_choice("spread", spread, SPREADS)
    read_spread = None if output == "bounds" else spread
    targets, first, second, weights = _numpy_predictions(y_true, y_pred, sample_weight, read_spread)
    if output == "bounds":
        lower, upper = first, second
    else:
        z = special.ndtri((1.0 + level) / 2.0)
        std = _numpy_moments(second, spread)[2]
        lower, upper = first - z * std, first + z * std
    inside = (targets >= lower) & (targets <= upper)
    return float(np.sum(weights * inside) / np.sum(weights))


def quantile_calibration_error(y_true, y_pred, num_levels=99, norm="l1", spread="variance",
                               sample_weight=None):
    """The NumPy twin of `QuantileCalibrationError`, from whole arrays.

    Example:

    >>> round(quantile_calibration_error(
    ...     [-1.0, 1.0], [[0.0, 1.0], [0.0, 1.0]], num_levels=3, spread="std"), 4)
    0.1667
    """
    validation.check_int("num_levels", num_levels)
    validation.check_choice("norm", norm, QUANTILE_NORMS)
    validation.check_choice("spread", spread, SPREADS)
    targets, means, spreads, weights = _numpy_predictions(y_true, y_pred, sample_weight, spread)
    std = _numpy_moments(spreads, spread)[2]
    pit = special.ndtr((targets - means) / std)
    levels = quantile_levels(num_levels).astype(np.float64)
    observed = np.array([np.sum(weights * (pit <= level)) for level in levels]) / np.sum(weights)
    gaps = np.abs(observed - levels)
    if norm == "l1":
        return float(np.mean(gaps))
    if norm == "l2":
        return float(np.sqrt(np.mean(gaps**2)))
    return float(np.max(gaps))
