"""Proper scoring rules as streaming Keras metrics: NLL and Brier score.

Both are weighted means over predictions, kept as two running sums, and
read their inputs exactly like the calibration metrics (see
`ExpectedCalibrationError`): class axis last, integer or one-hot labels,
probabilities or logits, a single column read as a sigmoid output, and an
optional `ignore_label` whose predictions are left out.
"""

import keras
from keras import ops

from keras_noisewarm import validation
from keras_noisewarm.metrics import batches


class _MeanScore(keras.metrics.Metric):
    """Weighted mean of a per-prediction score.

    Args:
        from_logits: Whether `y_pred` holds logits; `None` detects it per
            batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (`True`) or
            one-hot vectors (`False`).
        ignore_label: A label whose predictions are left out, or `None`.
        name: Name of the metric instance.
        dtype: Dtype of the state and result.
    """

    def __init__(self, from_logits=None, sparse_y_true=True, ignore_label=None, name=None,
                 dtype=None):
        super().__init__(name=name, dtype=dtype)
        # Lower is better, for EarlyStopping(mode="auto").
        self._direction = "down"
        self.from_logits = validation.check_from_logits(from_logits)
        self.sparse_y_true = validation.check_bool("sparse_y_true", sparse_y_true)
        self.ignore_label = validation.check_ignore_label(ignore_label, self.sparse_y_true)
        self.total = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="total"
        )
        self.count = self.add_variable(
            shape=(), initializer="zeros", dtype=self.dtype, name="count"
        )
        self.input_problems = batches.add_problem_counts(self)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds a batch of predictions.

        Args and checks are those of
        `ExpectedCalibrationError.update_state`: invalid inputs raise
        `ValueError` in eager execution, and make `result()` NaN when met
        inside a compiled step.
        """
        batch = batches.prepare_batch(
            y_true,
            y_pred,
            sample_weight,
            from_logits=self.from_logits,
            sparse_y_true=self.sparse_y_true,
            ignore_label=self.ignore_label,
        )
        scores = self._scores(batch)
        # Masked with `where`, not by the zero weight: 0 * NaN is NaN.
        scores = batches.where_valid(batch.valid, scores)
        self.total.assign_add(ops.cast(ops.sum(scores * batch.weights), self.dtype))
        self.count.assign_add(ops.cast(ops.sum(batch.weights), self.dtype))
        batches.record_problems(self, batch.problems, recompute=None)

    def result(self):
        return batches.result_or_nan(self, ops.divide_no_nan(self.total, self.count))

    def _scores(self, batch):
        raise NotImplementedError

    def get_config(self):
        return {
            "name": self.name,
            "dtype": self.dtype,
            "from_logits": self.from_logits,
            "sparse_y_true": self.sparse_y_true,
            "ignore_label": self.ignore_label,
        }


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class NegativeLogLikelihood(_MeanScore):
    """Mean negative log-likelihood of the labels (cross-entropy).

    `-log p(label)` averaged over predictions (weighted by `sample_weight`).
    From logits it is computed with a log-softmax (log-sigmoid for a single
    output), so it stays finite for confident mistakes; probabilities are
    clipped to `[keras.backend.epsilon(), 1]` first, as Keras's
    cross-entropy losses do, which caps a single score at about 16.1.
    A single sigmoid output gives the binary cross-entropy.

    Args:
        from_logits: Whether `y_pred` holds logits; `None` (default) detects
            it per batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        ignore_label: A label whose predictions are left out (weight 0,
            never checked), such as the 255 of a segmentation mask or the
            padding id of a sequence; `None` (default) leaves nothing out.
        name: Name of the metric instance (default `"nll"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = NegativeLogLikelihood()
    >>> # -(log 0.5 + log 0.25) / 2 = (0.6931 + 1.3863) / 2
    >>> metric.update_state([0, 1], [[0.5, 0.5], [0.75, 0.25]])
    >>> round(float(metric.result()), 4)
    1.0397

    Next-token predictions of padded sequences, the padding label 0 left out:

    >>> metric = NegativeLogLikelihood(ignore_label=0)
    >>> metric.update_state([[2, 0]], [[[0.25, 0.25, 0.5], [0.9, 0.05, 0.05]]])
    >>> round(float(metric.result()), 4)  # -log 0.5
    0.6931
    """

    def __init__(self, from_logits=None, sparse_y_true=True, ignore_label=None, name="nll",
                 dtype=None):
        super().__init__(
            from_logits=from_logits,
            sparse_y_true=sparse_y_true,
            ignore_label=ignore_label,
            name=name,
            dtype=dtype,
        )

    def _scores(self, batch):
        log_probabilities = batches.log_probabilities(batch)
        labels = ops.expand_dims(batch.labels, axis=-1)
        return -ops.take_along_axis(log_probabilities, labels, axis=-1)[:, 0]


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class BrierScore(_MeanScore):
    """Mean Brier score: squared distance of the probabilities to the label.

    `sum_k (p_k - [label == k])^2` averaged over predictions (Brier, 1950),
    between 0 (certain and right) and 2 (certain and wrong). For a single
    sigmoid output it is the binary form `(p - y)^2`, between 0 and 1, as
    in scikit-learn's `brier_score_loss`: half the two-class sum.

    Args:
        from_logits: Whether `y_pred` holds logits; `None` (default) detects
            it per batch (see `keras_noisewarm.outputs`).
        sparse_y_true: Whether `y_true` holds integer labels (default) or
            one-hot vectors.
        ignore_label: A label whose predictions are left out (weight 0,
            never checked), such as the 255 of a segmentation mask or the
            padding id of a sequence; `None` (default) leaves nothing out.
        name: Name of the metric instance (default `"brier_score"`).
        dtype: Dtype of the state and result.

    Example:

    >>> metric = BrierScore()
    >>> # (0.2^2 + 0.2^2) for the first, (0.6^2 + 0.6^2) for the second.
    >>> metric.update_state([0, 1], [[0.8, 0.2], [0.6, 0.4]])
    >>> round(float(metric.result()), 4)
    0.4
    """

    def __init__(
        self, from_logits=None, sparse_y_true=True, ignore_label=None, name="brier_score",
        dtype=None,
    ):
        super().__init__(
            from_logits=from_logits,
            sparse_y_true=sparse_y_true,
            ignore_label=ignore_label,
            name=name,
            dtype=dtype,
        )

    def _scores(self, batch):
        probabilities = batch.probabilities
        is_label = ops.one_hot(batch.labels, probabilities.shape[-1])
        scores = ops.sum((probabilities - is_label) ** 2, axis=-1)
        if batch.outputs.shape[-1] == 1:
            scores = scores / 2.0
        return scores
