"""Calibration errors as streaming Keras metrics.

All metrics here keep one fixed-size histogram of the predictions seen so
far: for every confidence bin, the (weighted) number of predictions, the sum
of their confidences and the sum of their correctness. Memory is O(bins)
whatever the number of batches, the result is exact (not an approximation
from a sample), and replicas merge by summing their states.

Bins are half-open `[a, b)` with the last one closed, `[a, 1]`: a confidence
of exactly 0.0 falls in the first bin and one of exactly 1.0 in the last.
The edges are `k / num_bins` rounded to float32, the dtype confidences are
computed in, so a confidence equal to an edge always starts the next bin.
"""

import json

import keras
import numpy as np
from keras import ops

from keras_noisewarm import validation
from keras_noisewarm.backend.compilation import compile_repeated_calls
from keras_noisewarm.backend.compilation import values_are_concrete
from keras_noisewarm.backend.reductions import bin_sums
from keras_noisewarm.backend.reductions import top_label
from keras_noisewarm.metrics import batches

NORMS = ("l1", "l2", "max")
BIN_CONFIDENCES = ("mean", "center")
BINARY_CONFIDENCES = ("top_label", "positive_class")
DEFAULT_NUM_BINS = 15


def _uniform_edges(num_bins):
    """The `num_bins + 1` bin edges `k / num_bins`, rounded to float32."""
    return (np.arange(num_bins + 1) / num_bins).astype("float32")


def _bin_index(confidences, edges):
    """Index of the bin `[edges[i], edges[i + 1])` holding each confidence.

    Counting the interior edges at or below a confidence gives its bin, puts
    1.0 in the last bin, and compares in the confidences' own dtype.
    """
    interior_edges = ops.convert_to_tensor(edges[1:-1], dtype=confidences.dtype)
    return ops.searchsorted(interior_edges, confidences, side="right")


def _binned_error(counts, confidence_sums, correct_sums, norm, bin_centers=None):
    """Calibration error from per-bin totals along the last axis.

    Args:
        counts: Weighted number of predictions in each bin.
        confidence_sums: Weighted sum of the confidences in each bin.
        correct_sums: Weighted number of correct predictions in each bin.
        norm: `"l1"`, `"l2"` or `"max"`.
        bin_centers: If given, the confidence of a bin is its centre instead
            of the mean confidence of its predictions.

    Returns:
        The error, 0 where there are no predictions at all.
    """
    if bin_centers is not None:
        confidence_sums = counts * bin_centers
    total = ops.sum(counts, axis=-1)
    if norm == "l1":
        # sum_b (n_b / N) |acc_b - conf_b| with n_b cancelled: no division
        # by small bin counts.
        error = ops.sum(ops.abs(correct_sums - confidence_sums), axis=-1)
        return ops.divide_no_nan(error, total)
    gaps = ops.divide_no_nan(ops.abs(correct_sums - confidence_sums), counts)
    if norm == "l2":
        return ops.sqrt(ops.divide_no_nan(ops.sum(counts * gaps**2, axis=-1), total))
    # Empty bins have a gap of 0, so they never set the maximum.
    return ops.max(gaps, axis=-1)


def equal_mass_groups(counts, num_groups):
    """Groups consecutive fine histogram bins into bins of nearly equal weight.

    A fine bin goes to the group its middle falls in by cumulative weight,
    `floor(num_groups * (weight below + half its own weight) / total)`, so
    the groups' edges are the equal-mass quantiles rounded to the fine grid
    and a fine bin is never split. With one prediction per fine bin this is
    the exact equal-count split of the sorted predictions.

    Args:
        counts: Tensor of the fine bins' weighted counts, shape `(bins,)`.
        num_groups: Number of groups.

    Returns:
        int32 tensor of shape `(bins,)`: each fine bin's group.

    Example:

    >>> groups = equal_mass_groups(keras.ops.convert_to_tensor([1.0, 1.0, 0.0, 2.0]), 2)
    >>> keras.ops.convert_to_numpy(groups).tolist()
    [0, 0, 1, 1]
    """
    total = ops.sum(counts)
    middles = ops.cumsum(counts) - counts / 2
    groups = ops.floor(ops.divide_no_nan(middles * num_groups, total))
    return ops.cast(ops.minimum(groups, num_groups - 1), "int32")


class _BinnedCalibrationError(keras.metrics.Metric):
    """Accumulates a histogram of confidence and correctness.

    Subclasses say which (bin, confidence, correctness) entries a batch adds
    (`_histogram_entries`) and how the histogram becomes a number
    (`_error`). The state is three float variables of `histogram_shape`
    (weighted count, confidence sum and correct sum per bin) and a count of
    the invalid predictions met while tracing, which makes `result()` NaN.

    Args:
        num_bins: Number of confidence bins.
        histogram_shape: Shape of the state variables.
        from_logits: Whether `y_pred` holds logits (`True`), probabilities
            (`False`) or either, detected per batch (`None`); see
            `keras_noisewarm.outputs`.
        sparse_y_true: Whether `y_true` holds integer labels (`True`) or
            one-hot vectors (`False`).
        ignore_label: A label whose predictions are left out, or `None`.
        name: Name of the metric instance.
        dtype: Dtype of the state and result; predictions are always
            compared in float32.
    """

    def __init__(
        self,
        num_bins,
        histogram_shape,
        from_logits=None,
        sparse_y_true=True,
        ignore_label=None,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, dtype=dtype)
        validation.check_int("num_bins", num_bins)
        # Lower is better: lets EarlyStopping(monitor="val_ece") use mode="auto".
        self._direction = "down"
        self.num_bins = num_bins
        self.from_logits = validation.check_from_logits(from_logits)
        self.sparse_y_true = validation.check_bool("sparse_y_true", sparse_y_true)
        self.ignore_label = validation.check_ignore_label(ignore_label, self.sparse_y_true)
        self.bin_counts = self.add_variable(
            shape=histogram_shape,
            initializer="zeros",
            dtype=self.dtype,
            name="bin_counts",
        )
        self.bin_confidence_sums = self.add_variable(
            shape=histogram_shape,
            initializer="zeros",
            dtype=self.dtype,
            name="bin_confidence_sums",
        )
        self.bin_correct_sums = self.add_variable(
            shape=histogram_shape,
            initializer="zeros",
            dtype=self.dtype,
            name="bin_correct_sums",
        )
        self.input_problems = batches.add_problem_counts(self)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch of predictions to the histogram.

        Args:
            y_true: Integer labels of shape `batch_shape` or
                `batch_shape + (1,)`, or one-hot labels of the shape of
                `y_pred` when `sparse_y_true=False`. With a single sigmoid
                output, labels are 0 or 1.
            y_pred: Probabilities (or logits with `from_logits=True`) of shape
                `batch_shape + (num_classes,)`; `(batch, 1)` for a sigmoid.
            sample_weight: Optional weights, a scalar or of shape
                `batch_shape`. Weights act as frequency weights: a weight of
                2 counts a prediction twice. Predictions whose label is
                `ignore_label` weigh 0 whatever their weight.

        Raises:
            ValueError: On shapes that do not fit together, and, where the
                values are concrete (eager execution), on labels out of
                range, NaN or Inf in `y_pred`, or probabilities that do not
                sum to one. While traced (`jit`, `tf.function`) the invalid
                predictions are left out of the bins and counted instead, and
                `result()` returns NaN.
        """
        batch_totals = compile_repeated_calls(
            self._configuration_key(), self._batch_totals
        )
        totals, problems = batch_totals(y_true, y_pred, sample_weight)
        batches.record_problems(
            self, problems, lambda: self._batch_totals(y_true, y_pred, sample_weight)
        )
        totals = ops.cast(totals, self.dtype)
        for column, variable in enumerate(
            (self.bin_counts, self.bin_confidence_sums, self.bin_correct_sums)
        ):
            total = totals[:, column]
            if len(variable.shape) > 1:
                total = ops.reshape(total, variable.shape)
            variable.assign_add(total)

    def _batch_totals(self, y_true, y_pred, sample_weight):
        """Per-bin totals of one batch, as a pure function of the batch.

        Returns:
            A tuple: float32 tensor of shape `(cells, 3)` with each bin
            cell's weighted count, confidence sum and correct sum (cells
            are the state's entries, flattened), and the number of invalid
            rows, or `None` when eager (invalid rows raise instead).
        """
        batch = batches.prepare_batch(
            y_true,
            y_pred,
            sample_weight,
            from_logits=self.from_logits,
            sparse_y_true=self.sparse_y_true,
            ignore_label=self.ignore_label,
        )
        bins, confidences, correct, weights = self._histogram_entries(batch)
        num_cells = int(np.prod(self.bin_counts.shape))
        totals = bin_sums(
            [weights, weights * confidences, weights * correct], bins, num_cells
        )
        return totals, batch.problems

    def _configuration_key(self):
        # `_batch_totals` reads only the configuration (not the state), so
        # metrics configured alike share one compiled version of it.
        config = dict(self.get_config(), name=None)
        return (type(self), json.dumps(config, sort_keys=True, default=str))

    def result(self):
        error = self._error(
            self.bin_counts.value,
            self.bin_confidence_sums.value,
            self.bin_correct_sums.value,
        )
        return batches.result_or_nan(self, ops.cast(error, self.dtype))

    def _histogram_entries(self, batch):
        """Returns flat `(bins, confidences, correct, weights)` of a batch."""
        raise NotImplementedError

    def _error(self, counts, confidence_sums, correct_sums):
        raise NotImplementedError

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "num_bins": self.num_bins,
            "from_logits": self.from_logits,
            "sparse_y_true": self.sparse_y_true,
            "ignore_label": self.ignore_label,
        }


class _TopLabelCalibrationError(_BinnedCalibrationError):
    """Bins each prediction by the probability of its predicted class.

    Args:
        binary_confidence: For binary models only. `"top_label"` (default)
            measures the predicted class, as for any number of classes;
            `"positive_class"` measures `P(y = 1)` against the frequency of
            `y = 1`, which is the usual reliability curve of a sigmoid model.
        norm: `"l1"`, `"l2"` or `"max"`.
        bin_confidence: `"mean"` or `"center"`.
        **kwargs: Arguments of `_BinnedCalibrationError`.
    """

    def __init__(
        self,
        binary_confidence="top_label",
        norm="l1",
        bin_confidence="mean",
        **kwargs,
    ):
        super().__init__(**kwargs)
        validation.check_choice("binary_confidence", binary_confidence, BINARY_CONFIDENCES)
        validation.check_choice("norm", norm, NORMS)
        validation.check_choice("bin_confidence", bin_confidence, BIN_CONFIDENCES)
        self.binary_confidence = binary_confidence
        self.norm = norm
        self.bin_confidence = bin_confidence

    def _histogram_entries(self, batch):
        labels = batch.labels
        if self.binary_confidence == "positive_class":
            probabilities = batch.probabilities
            if probabilities.shape[-1] != 2:
                raise ValueError(
                    "binary_confidence='positive_class' needs a binary model: "
                    "one sigmoid output or two softmax outputs. Received "
                    f"y_pred with {probabilities.shape[-1]} classes."
                )
            # A copy, not a strided view: torch's searchsorted warns on one.
            confidences = ops.take(probabilities, 1, axis=-1)
            correct = ops.equal(labels, 1)
        else:
            confidences, predicted = batches.top_label(batch)
            correct = ops.equal(predicted, labels)
        # Invalid rows weigh 0, but a NaN confidence would still poison the
        # sums (0 * NaN is NaN).
        confidences = batches.where_valid(batch.valid, confidences)
        bins = self._bin_index(confidences)
        return bins, confidences, ops.cast(correct, "float32"), batch.weights

    def _bin_index(self, confidences):
        return _bin_index(confidences, _uniform_edges(self.num_bins))

    def _reporting_bins(self, counts, confidence_sums, correct_sums):
        """Maps the state onto the reported bins: `(lower, upper, totals...)`.

        Returns a tuple `(counts, confidence_sums, correct_sums)` of the bins
        the error is computed on; the equal-width bins of the state itself
        unless a subclass regroups them.
        """
        return counts, confidence_sums, correct_sums

    def _reporting_edges(self):
        """NumPy `(lower, upper)` edges of the reported bins."""
        edges = _uniform_edges(self.num_bins)
        return edges[:-1], edges[1:]

    def _error(self, counts, confidence_sums, correct_sums):
        counts, confidence_sums, correct_sums = self._reporting_bins(
            counts, confidence_sums, correct_sums
        )
        bin_centers = None
        if self.bin_confidence == "center":
            lower, upper = self._reporting_edges()
            bin_centers = ops.convert_to_tensor((lower + upper) / 2, counts.dtype)
        return _binned_error(
            counts, confidence_sums, correct_sums, self.norm, bin_centers
        )

    def bin_statistics(self):
        """Per-bin totals of the predictions seen so far, as NumPy arrays.

        This is what `keras_noisewarm.plot.reliability_diagram` draws.

        Returns:
            A dict of arrays with one entry per bin: `"lower"` and `"upper"`
            edges, `"count"` (weighted number of predictions), `"accuracy"`
            (weighted fraction correct) and `"confidence"` (the confidence
            the error compares it with: the mean confidence of the bin, or
            its centre with `bin_confidence="center"`). Empty bins have a
            count of 0 and NaN accuracy and confidence.
        """
        counts, confidence_sums, correct_sums = (
            ops.convert_to_numpy(total).astype("float64")
            for total in self._reporting_bins(
                self.bin_counts.value,
                self.bin_confidence_sums.value,
                self.bin_correct_sums.value,
            )
        )
        lower, upper = self._reporting_edges()
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = np.where(counts > 0, correct_sums / counts, np.nan)
            confidence = np.where(counts > 0, confidence_sums / counts, np.nan)
        if self.bin_confidence == "center":
            confidence = np.where(counts > 0, (lower + upper) / 2, np.nan)
        return {
            "lower": np.asarray(lower, "float64"),
            "upper": np.asarray(upper, "float64"),
            "count": counts,
            "accuracy": accuracy,
            "confidence": confidence,
        }

    def get_config(self):
        config = super().get_config()
        config["binary_confidence"] = self.binary_confidence
        return config


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class ExpectedCalibrationError(_TopLabelCalibrationError):
    """Expected calibration error (ECE) of a classifier's top label.

    The confidence of a prediction is the probability of its predicted class,
    and it is correct when that class is the label. Where several classes
    share the largest probability, the predicted class is the first of them,
    as `argmax` and Keras's accuracy metrics choose: a uniform prediction is
    correct only for class 0. Predictions are grouped into `num_bins`
    equal-width confidence bins; in each bin `b` the accuracy `acc_b` is
    compared with the mean confidence `conf_b` (Guo et al., 2017):

    ```python
    ece = sum_b (n_b / N) * |acc_b - conf_b|          # norm="l1"
    ece = sqrt(sum_b (n_b / N) * (acc_b - conf_b)**2)  # norm="l2"
    ece = max_b |acc_b - conf_b|  (non-empty bins)     # norm="max"
    ```

    Bins are half-open `[a, b)` with the last one closed: a confidence of
    exactly 0.0 falls in the first bin, one of exactly 1.0 in the last, and
    one exactly on an interior edge in the bin above it. Edges are
    `k / num_bins` rounded to float32, and confidences are computed in
    float32.

    The state is three vectors of `num_bins` sums (weighted count, sum of
    confidences, sum of correct predictions), so the metric streams over any
    number of batches in O(num_bins) memory and gives the same value
    whatever the batch split; replicas merge by summing the states. Before
    any prediction, and while no prediction carries weight, the result is 0.

    To reproduce the ECE of the warm-up paper's code (Cheon & Paik, 2026)
    use `num_bins=10, bin_confidence="center"`: it compares each bin's
    accuracy with the bin's centre instead of its mean confidence. (Their
    code also leaves out predictions whose confidence is exactly 1.0, which
    a saturated softmax gives; this metric counts them in the last bin.)

    Inputs are checked where their values are known (eager execution, and
    every step of the torch trainer): labels must be integers in range,
    `y_pred` finite, and probabilities lie in `[0, 1]` and sum to one within
    the tolerance of their dtype (`keras_noisewarm.outputs`; 1e-3 for
    float32, 0.031 for bfloat16), else `update_state` raises `ValueError`;
    an empty batch is an error too. Inside a compiled step (`jit`,
    `tf.function`) nothing can raise: invalid rows are left out of the bins
    and counted by kind in `input_problems`, `result()` returns NaN, and the
    first time the result is read eagerly (as Keras does after every epoch
    and evaluation) a `RuntimeWarning` says how many rows of which kind were
    left out.

    Used on its own, eagerly, `update_state` runs its arithmetic op by op
    the first time it meets a shape of batch, and under TensorFlow and JAX
    compiles it (XLA) the second time: a loop over equal batches then runs
    compiled, after a one-time compilation per shape, while a single call on
    a test set does not pay for compiling (docs/BENCHMARKS.md). Metrics
    configured alike share the compiled function. Inputs are checked the
    same way either way.

    Args:
        num_bins: Number of equal-width confidence bins. Defaults to 15, the
            most common choice since Guo et al. (2017); the paper's figures
            use 10.
        norm: `"l1"` (default, the ECE), `"l2"` (root mean squared
            calibration error) or `"max"` (the maximum calibration error).
        bin_confidence: `"mean"` (default) compares each bin's accuracy with
            the mean confidence of its predictions; `"center"` with the
            centre of the bin, as in the warm-up paper's code.
        from_logits: Whether `y_pred` holds logits (softmax, or sigmoid for a
            single output, is applied) or probabilities. `None` (default)
            detects it for every batch: probabilities when every value lies
            in `[0, 1]` and every row sums to one, logits when some value
            lies outside `[0, 1]`; a single column is a sigmoid probability
            (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors of the shape of `y_pred`.
        binary_confidence: How a binary model is measured. `"top_label"`
            (default) uses the probability of the predicted class, like any
            classifier (so confidences lie in `[0.5, 1]`); `"positive_class"`
            bins `P(y = 1)` and compares it with the frequency of `y = 1`.
            A binary model is one with a single sigmoid output (`y_pred` of
            shape `(batch, 1)`, labels 0/1; the predicted class is 1 when
            `p > 0.5`) or two softmax outputs.
        ignore_label: A label whose predictions are left out: weight 0,
            never checked, never counted as invalid, whatever `y_pred` holds
            there. For segmentation masks (255 marks unlabelled pixels, say)
            and padded sequences (the padding id). Needs integer labels.
            `None` (default) leaves nothing out.
        name: Name of the metric instance. Defaults to `"ece"`, so that
            `EarlyStopping(monitor="val_ece")` finds it.
        dtype: Dtype of the state and result. Defaults to float32.

    Example:

    >>> metric = ExpectedCalibrationError(num_bins=5)
    >>> # Confidences 0.9 (correct), 0.6 (wrong), 0.7 and 0.8 (correct).
    >>> # Bin [0.6, 0.8): acc 1/2, conf 0.65; bin [0.8, 1]: acc 1, conf 0.85.
    >>> # ECE = 2/4 * 0.15 + 2/4 * 0.15 = 0.15.
    >>> metric.update_state(
    ...     [0, 1, 1, 1],
    ...     [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]],
    ... )
    >>> round(float(metric.result()), 4)
    0.15

    A segmentation map of 2 x 2 pixels whose unlabelled pixel (255) is left
    out, NaN prediction and all:

    >>> metric = ExpectedCalibrationError(num_bins=5, ignore_label=255)
    >>> metric.update_state(
    ...     [[[0, 1], [1, 255]]],
    ...     [[[[0.9, 0.1], [0.6, 0.4]], [[0.3, 0.7], [float("nan"), 0.5]]]],
    ... )
    >>> # Bin [0.6, 0.8): 0.6 (wrong), 0.7 (right), gap 0.15; [0.8, 1]: 0.9
    >>> # (right), gap 0.1. ECE = 2/3 * 0.15 + 1/3 * 0.1.
    >>> round(float(metric.result()), 4)
    0.1333

    Usage with `compile()`:

    ```python
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=[keras_noisewarm.metrics.ExpectedCalibrationError()],
    )
    ```
    """

    def __init__(
        self,
        num_bins=DEFAULT_NUM_BINS,
        norm="l1",
        bin_confidence="mean",
        from_logits=None,
        sparse_y_true=True,
        binary_confidence="top_label",
        ignore_label=None,
        name="ece",
        dtype=None,
    ):
        super().__init__(
            num_bins=num_bins,
            histogram_shape=(num_bins,),
            norm=norm,
            bin_confidence=bin_confidence,
            from_logits=from_logits,
            sparse_y_true=sparse_y_true,
            binary_confidence=binary_confidence,
            ignore_label=ignore_label,
            name=name,
            dtype=dtype,
        )

    def get_config(self):
        config = super().get_config()
        config["norm"] = self.norm
        config["bin_confidence"] = self.bin_confidence
        return config


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class MaximumCalibrationError(ExpectedCalibrationError):
    """Maximum calibration error (MCE): the largest gap over non-empty bins.

    `max_b |acc_b - conf_b|` over the equal-width confidence bins that hold
    at least one prediction; the same as
    `ExpectedCalibrationError(norm="max")`. See `ExpectedCalibrationError`
    for the bins, the inputs and what is checked.

    Args:
        num_bins: Number of equal-width confidence bins (default 15).
        bin_confidence: `"mean"` (default) or `"center"` (the paper's code).
        from_logits: Whether `y_pred` holds logits; `None` (default) detects
            it per batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        binary_confidence: `"top_label"` (default) or `"positive_class"`
            for binary models.
        ignore_label: A label whose predictions are left out (see
            `ExpectedCalibrationError`), or `None` (default).
        name: Name of the metric instance (default `"mce"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = MaximumCalibrationError(num_bins=5)
    >>> # Bins [0.6, 0.8): acc 1/2, conf 0.65 -> gap 0.15;
    >>> # [0.8, 1]: acc 2/3, conf (0.9 + 0.8 + 0.95) / 3 -> gap 0.2167.
    >>> metric.update_state(
    ...     [0, 1, 1, 1, 0],
    ...     [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8], [0.05, 0.95]],
    ... )
    >>> round(float(metric.result()), 4)
    0.2167
    """

    def __init__(
        self,
        num_bins=DEFAULT_NUM_BINS,
        bin_confidence="mean",
        from_logits=None,
        sparse_y_true=True,
        binary_confidence="top_label",
        ignore_label=None,
        name="mce",
        dtype=None,
    ):
        super().__init__(
            num_bins=num_bins,
            norm="max",
            bin_confidence=bin_confidence,
            from_logits=from_logits,
            sparse_y_true=sparse_y_true,
            binary_confidence=binary_confidence,
            ignore_label=ignore_label,
            name=name,
            dtype=dtype,
        )

    def get_config(self):
        config = super().get_config()
        del config["norm"]
        return config


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class AdaptiveCalibrationError(_TopLabelCalibrationError):
    """Adaptive (equal-mass) expected calibration error.

    Like `ExpectedCalibrationError`, but the `num_bins` bins hold (about)
    the same number of predictions each instead of spanning the same width,
    so that the crowded high-confidence region is resolved finely (Nguyen &
    O'Connor, 2015; Nixon et al., 2019).

    Exact equal-mass bins need every prediction in memory. This metric keeps
    a fine equal-width histogram instead (`num_histogram_bins` bins, state
    O(num_histogram_bins)) and, in `result()`, groups consecutive fine bins
    into `num_bins` bins of nearly equal weight: a fine bin goes to the
    adaptive bin its middle falls in by cumulative weight,
    `floor(num_bins * (weight below + half its own weight) / N)`. The edges of
    the adaptive bins are therefore the equal-mass quantiles rounded to the
    fine grid (1e-4 wide by default); predictions that share one fine bin
    (for instance many confidences of exactly 1.0) are never split, so some
    adaptive bins may hold more than `N / num_bins` and some none.

    Args:
        num_bins: Number of adaptive bins (default 15).
        num_histogram_bins: Number of fine equal-width bins of the state
            (default 10,000).
        norm: `"l1"` (default), `"l2"` or `"max"`.
        from_logits: Whether `y_pred` holds logits; `None` (default) detects
            it per batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        binary_confidence: `"top_label"` (default) or `"positive_class"`
            for binary models.
        ignore_label: A label whose predictions are left out (see
            `ExpectedCalibrationError`), or `None` (default).
        name: Name of the metric instance (default `"adaptive_ece"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = AdaptiveCalibrationError(num_bins=2)
    >>> # Confidences 0.6 (wrong), 0.7, 0.8, 0.9 (correct): two bins of two.
    >>> # Low bin: acc 1/2, conf 0.65; high bin: acc 1, conf 0.85.
    >>> metric.update_state(
    ...     [0, 1, 1, 1],
    ...     [[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]],
    ... )
    >>> round(float(metric.result()), 4)
    0.15
    """

    def __init__(
        self,
        num_bins=DEFAULT_NUM_BINS,
        num_histogram_bins=10_000,
        norm="l1",
        from_logits=None,
        sparse_y_true=True,
        binary_confidence="top_label",
        ignore_label=None,
        name="adaptive_ece",
        dtype=None,
    ):
        validation.check_int("num_histogram_bins", num_histogram_bins)
        super().__init__(
            num_bins=num_bins,
            histogram_shape=(num_histogram_bins,),
            norm=norm,
            from_logits=from_logits,
            sparse_y_true=sparse_y_true,
            binary_confidence=binary_confidence,
            ignore_label=ignore_label,
            name=name,
            dtype=dtype,
        )
        self.num_histogram_bins = num_histogram_bins

    def _bin_index(self, confidences):
        return _bin_index(confidences, _uniform_edges(self.num_histogram_bins))

    def _groups(self, counts):
        return equal_mass_groups(counts, self.num_bins)

    def _reporting_bins(self, counts, confidence_sums, correct_sums):
        groups = self._groups(counts)
        return tuple(
            ops.segment_sum(totals, groups, num_segments=self.num_bins)
            for totals in (counts, confidence_sums, correct_sums)
        )

    def _reporting_edges(self):
        # Each adaptive bin spans its non-empty fine bins; NaN when empty.
        counts = ops.convert_to_numpy(self.bin_counts.value)
        groups = ops.convert_to_numpy(self._groups(self.bin_counts.value))
        fine_edges = _uniform_edges(self.num_histogram_bins).astype("float64")
        lower = np.full(self.num_bins, np.nan)
        upper = np.full(self.num_bins, np.nan)
        for group in range(self.num_bins):
            members = np.flatnonzero((groups == group) & (counts > 0))
            if members.size:
                lower[group] = fine_edges[members[0]]
                upper[group] = fine_edges[members[-1] + 1]
        return lower, upper

    def get_config(self):
        config = super().get_config()
        config["num_histogram_bins"] = self.num_histogram_bins
        config["norm"] = self.norm
        return config


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class DebiasedL2CalibrationError(_TopLabelCalibrationError):
    """Debiased L2 calibration error (Kumar et al., 2019).

    The plug-in L2 error `sum_b (n_b / N) (acc_b - conf_b)^2` overestimates
    the true squared error, because `acc_b` is itself a noisy average of
    `n_b` outcomes: a perfectly calibrated model still shows gaps of about
    `sqrt(acc_b (1 - acc_b) / n_b)`. This metric subtracts that sampling
    variance from every bin with at least two predictions:

    ```python
    squared = sum_b (n_b / N) * ((acc_b - conf_b)**2
                                 - acc_b * (1 - acc_b) / (n_b - 1))
    result = sqrt(max(squared, 0))
    ```

    Bins with fewer than two predictions add nothing. `n_b` is the weighted
    count, so sample weights must act as frequency weights here. The bins are
    those of `ExpectedCalibrationError` (equal width, `[a, b)`, last closed),
    and the result is comparable with `ExpectedCalibrationError(norm="l2")`.

    Args:
        num_bins: Number of equal-width confidence bins (default 15).
        from_logits: Whether `y_pred` holds logits; `None` (default) detects
            it per batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        binary_confidence: `"top_label"` (default) or `"positive_class"`
            for binary models.
        ignore_label: A label whose predictions are left out (see
            `ExpectedCalibrationError`), or `None` (default).
        name: Name of the metric instance (default `"debiased_l2_ce"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = DebiasedL2CalibrationError(num_bins=5)
    >>> # One bin [0.6, 0.8) with confidences 0.7, 0.7 and one of two
    >>> # correct: (0.5 - 0.7)^2 - 0.5 * 0.5 / (2 - 1) < 0, so 0.
    >>> metric.update_state([0, 1], [[0.7, 0.3], [0.7, 0.3]])
    >>> float(metric.result())
    0.0
    """

    def __init__(
        self,
        num_bins=DEFAULT_NUM_BINS,
        from_logits=None,
        sparse_y_true=True,
        binary_confidence="top_label",
        ignore_label=None,
        name="debiased_l2_ce",
        dtype=None,
    ):
        super().__init__(
            num_bins=num_bins,
            histogram_shape=(num_bins,),
            norm="l2",
            from_logits=from_logits,
            sparse_y_true=sparse_y_true,
            binary_confidence=binary_confidence,
            ignore_label=ignore_label,
            name=name,
            dtype=dtype,
        )

    def _error(self, counts, confidence_sums, correct_sums):
        total = ops.sum(counts)
        accuracy = ops.divide_no_nan(correct_sums, counts)
        confidence = ops.divide_no_nan(confidence_sums, counts)
        variance = ops.divide_no_nan(accuracy * (1.0 - accuracy), counts - 1.0)
        per_bin = counts * ((accuracy - confidence) ** 2 - variance)
        per_bin = ops.where(ops.greater_equal(counts, 2.0), per_bin, 0.0)
        squared = ops.divide_no_nan(ops.sum(per_bin), total)
        return ops.sqrt(ops.maximum(squared, 0.0))


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class ClasswiseCalibrationError(_BinnedCalibrationError):
    """Classwise (static) calibration error over all classes.

    Where the ECE only looks at the predicted class, this metric checks every
    class probability: for each class `k`, the probabilities `p_k` of all
    predictions are binned and compared with how often the label is `k`,
    and the per-class errors are averaged (classwise-ECE of Kull et al.,
    2019; static calibration error of Nixon et al., 2019):

    ```python
    error = (1 / K) * sum_k sum_b (n_kb / N) * |freq_kb - conf_kb|
    ```

    The state holds `num_classes x num_bins` sums. Bins, input formats and
    checks are those of `ExpectedCalibrationError`. A single sigmoid output
    counts as two classes (`num_classes=2`).

    Args:
        num_classes: Number of classes (the width of `y_pred`, or 2 for a
            sigmoid output).
        num_bins: Number of equal-width bins per class (default 15).
        from_logits: Whether `y_pred` holds logits; `None` (default) detects
            it per batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        ignore_label: A label whose predictions are left out (see
            `ExpectedCalibrationError`), or `None` (default).
        name: Name of the metric instance (default `"classwise_ece"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = ClasswiseCalibrationError(num_classes=2, num_bins=5)
    >>> # Class 0: p 0.9 (label 0) and 0.2 (label 1): gaps 0.1 and 0.2.
    >>> # Class 1: p 0.1 and 0.8, the mirror image. (1/2)(0.15 + 0.15).
    >>> metric.update_state([0, 1], [[0.9, 0.1], [0.2, 0.8]])
    >>> round(float(metric.result()), 4)
    0.15
    """

    def __init__(
        self,
        num_classes,
        num_bins=DEFAULT_NUM_BINS,
        from_logits=None,
        sparse_y_true=True,
        ignore_label=None,
        name="classwise_ece",
        dtype=None,
    ):
        validation.check_int("num_classes", num_classes)
        super().__init__(
            num_bins=num_bins,
            histogram_shape=(num_classes, num_bins),
            from_logits=from_logits,
            sparse_y_true=sparse_y_true,
            ignore_label=ignore_label,
            name=name,
            dtype=dtype,
        )
        self.num_classes = num_classes

    def _histogram_entries(self, batch):
        probabilities = batch.probabilities
        if probabilities.shape[-1] != self.num_classes:
            raise ValueError(
                f"ClasswiseCalibrationError was built for {self.num_classes} "
                f"classes but y_pred has {probabilities.shape[-1]} (a sigmoid "
                "output counts as 2)."
            )
        probabilities = batches.where_valid(batch.valid, probabilities)
        is_label = ops.one_hot(batch.labels, self.num_classes)
        flat_probabilities = ops.reshape(probabilities, (-1,))
        bins = _bin_index(flat_probabilities, _uniform_edges(self.num_bins))
        bins = ops.reshape(ops.cast(bins, "int32"), ops.shape(probabilities))
        # Cell (k, b) of the state is the flat index k * num_bins + b.
        class_offsets = ops.arange(self.num_classes, dtype="int32") * self.num_bins
        cells = ops.reshape(bins + class_offsets, (-1,))
        weights = ops.expand_dims(batch.weights, axis=-1) + ops.zeros_like(
            probabilities
        )
        return (
            cells,
            flat_probabilities,
            ops.reshape(is_label, (-1,)),
            ops.reshape(weights, (-1,)),
        )

    def _error(self, counts, confidence_sums, correct_sums):
        per_class = _binned_error(counts, confidence_sums, correct_sums, "l1")
        return ops.mean(per_class)

    def get_config(self):
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config


AVERAGES = ("macro", "micro")


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class MultiLabelCalibrationError(_BinnedCalibrationError):
    """Per-label calibration error of a multi-label model (independent sigmoids).

    For each of the `num_labels` outputs, the predicted probabilities
    `P(y_k = 1)` are binned and compared with how often label `k` is 1 in
    each bin: the positive-class reliability curve of that label. With
    `average="macro"` (default) the per-label errors are averaged, so a rare
    label counts as much as a frequent one:

    ```python
    error = (1 / K) * sum_k sum_b (n_kb / N) * |freq_kb - conf_kb|
    ```

    With `average="micro"` every (example, label) pair goes into one
    histogram, the same as `ExpectedCalibrationError(binary_confidence=
    "positive_class")` on `y_pred[..., None]`. The state holds `num_labels x
    num_bins` sums whichever is reported; `per_label()` gives each label's
    error. Bins are those of `ExpectedCalibrationError`.

    Args:
        num_labels: Number of labels `K` (the width of `y_pred`).
        num_bins: Number of equal-width bins per label (default 15).
        average: `"macro"` (default) or `"micro"`.
        confidence: `"positive_class"` (default): bin `P(y_k = 1)` against
            the frequency of `y_k = 1`; `"top_label"`: bin the probability
            of the predicted value of each label, `max(p, 1 - p)`, against
            how often that prediction is right (the ECE of each label read
            as a binary classifier).
        from_logits: Whether `y_pred` holds logits (`True`) or sigmoid
            probabilities (`False`, default). Unlike for softmax outputs,
            independent sigmoids cannot be told from logits by their sums,
            so this is not detected.
        name: Name of the metric instance (default `"multi_label_ece"`).
        dtype: Dtype of the state and result.

    Labels `y_true` are 0 or 1, of the shape of `y_pred`; a `sample_weight`
    of shape `(batch,)` weighs every label of an example.

    Example:

    >>> metric = MultiLabelCalibrationError(num_labels=2, num_bins=5)
    >>> # Label 0: p 0.9 (y 1) and 0.9 (y 0): bin [0.8, 1], freq 1/2, gap 0.4.
    >>> # Label 1: p 0.1 (y 0) and 0.3 (y 0): gaps 0.1 and 0.3, weight 1/2 each.
    >>> metric.update_state([[1, 0], [0, 0]], [[0.9, 0.1], [0.9, 0.3]])
    >>> round(float(metric.result()), 4)
    0.3
    >>> [round(float(value), 4) for value in metric.per_label()]
    [0.4, 0.2]
    """

    def __init__(
        self,
        num_labels,
        num_bins=DEFAULT_NUM_BINS,
        average="macro",
        confidence="positive_class",
        from_logits=False,
        name="multi_label_ece",
        dtype=None,
    ):
        validation.check_int("num_labels", num_labels)
        validation.check_choice("average", average, AVERAGES)
        validation.check_choice("confidence", confidence, BINARY_CONFIDENCES)
        validation.check_bool("from_logits", from_logits)
        super().__init__(
            num_bins=num_bins,
            histogram_shape=(num_labels, num_bins),
            from_logits=from_logits,
            name=name,
            dtype=dtype,
        )
        self.num_labels = num_labels
        self.average = average
        self.confidence = confidence

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch: `y_true` and `y_pred` of shape `(..., num_labels)`."""
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if tuple(y_pred.shape[-1:]) != (self.num_labels,) or tuple(y_true.shape) != tuple(y_pred.shape):
            raise ValueError(
                f"MultiLabelCalibrationError was built for {self.num_labels} labels: y_true "
                f"and y_pred must both have shape (..., {self.num_labels}), got "
                f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}."
            )
        # Each label is one sigmoid output: the rows become (example, label).
        super().update_state(y_true, ops.expand_dims(y_pred, axis=-1), sample_weight)

    def _histogram_entries(self, batch):
        probabilities = batches.where_valid(batch.valid, batch.probabilities)
        if self.confidence == "top_label":
            confidences, predicted = top_label(probabilities)
            correct = ops.cast(ops.equal(predicted, batch.labels), "float32")
        else:
            confidences = ops.take(probabilities, 1, axis=-1)
            correct = ops.cast(ops.equal(batch.labels, 1), "float32")
        bins = ops.cast(_bin_index(confidences, _uniform_edges(self.num_bins)), "int32")
        # Rows are (example, label) pairs, label fastest.
        rows = ops.shape(confidences)[0]
        label_of_row = ops.arange(rows, dtype="int32") % self.num_labels
        cells = label_of_row * self.num_bins + bins
        return cells, confidences, correct, batch.weights

    def per_label(self):
        """Each label's calibration error, shape `(num_labels,)`."""
        return _binned_error(
            self.bin_counts.value, self.bin_confidence_sums.value, self.bin_correct_sums.value, "l1"
        )

    def _error(self, counts, confidence_sums, correct_sums):
        if self.average == "micro":
            return _binned_error(
                ops.sum(counts, axis=0), ops.sum(confidence_sums, axis=0), ops.sum(correct_sums, axis=0), "l1"
            )
        return ops.mean(_binned_error(counts, confidence_sums, correct_sums, "l1"))

    def get_config(self):
        config = super().get_config()
        for key in ("sparse_y_true", "ignore_label"):
            del config[key]
        config.update(num_labels=self.num_labels, average=self.average, confidence=self.confidence)
        return config
