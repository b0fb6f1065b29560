"""Isotonic-regression recalibration (Zadrozny & Elkan, 2002), one class at a time."""

import keras
import numpy as np

from keras_noisewarm import fitted_layer
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation

DEFAULT_MAX_KNOTS = 1024


def isotonic_regression(values, weights=None):
    """The non-decreasing sequence closest to `values` in weighted least squares.

    Pool adjacent violators: walking left to right, a value below the mean
    of the block before it is pooled with that block (and the pooled block
    with the one before, while they still violate the order), every block
    taking the weighted mean of its values.

    Args:
        values: Float array `(N,)`, in the order the fit must not decrease in.
        weights: Positive weights `(N,)`; default: ones.

    Returns:
        The fitted float64 values `(N,)`.

    Example:

    >>> isotonic_regression([1.0, 3.0, 2.0, 4.0]).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    weights = np.ones_like(values) if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if weights.shape != values.shape or np.any(weights <= 0):
        raise ValueError("Need one positive weight per value.")
    means, totals, sizes = [], [], []
    for value, weight in zip(values, weights):
        means.append(value)
        totals.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            weight = totals[-2] + totals[-1]
            means[-2] = (means[-2] * totals[-2] + means[-1] * totals[-1]) / weight
            totals[-2] = weight
            sizes[-2] += sizes[-1]
            del means[-1], totals[-1], sizes[-1]
    return np.repeat(means, sizes)


def isotonic_knots(scores, outcomes):
    """The knots of the isotonic map from scores to outcome frequencies.

    Scores are grouped where they are equal (a map gives equal scores one
    value), the group frequencies are fitted by `isotonic_regression`
    (weighted by group size), and the map is the piecewise-linear curve
    through the first and last score of every fitted block, constant beyond
    the smallest and largest score (scikit-learn's `IsotonicRegression` with
    `out_of_bounds="clip"` computes the same map).

    Args:
        scores: Float array `(N,)`.
        outcomes: Float array `(N,)` in `[0, 1]`.

    Returns:
        `(x, y)`: float64 arrays of the knots, `x` strictly increasing, `y`
        non-decreasing.

    Example:

    >>> x, y = isotonic_knots([0.1, 0.2, 0.3, 0.4], [0, 1, 0, 1])
    >>> x.tolist(), y.tolist()
    ([0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 1.0])
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    outcomes = np.asarray(outcomes, dtype=np.float64).reshape(-1)
    unique, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    frequencies = np.bincount(inverse, weights=outcomes) / counts
    fitted = isotonic_regression(frequencies, counts)
    # A knot is kept where the fit changes on either side: the ends of blocks.
    keep = np.ones(len(unique), dtype=bool)
    keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return unique[keep], fitted[keep]


def fit_isotonic(outputs, labels, from_logits=None, max_knots=DEFAULT_MAX_KNOTS):
    """Fits one isotonic map per class on held-out outputs (one against the rest).

    For class `k`, the map takes `p_k` (the model's probability of `k`) to
    the frequency of label `k` among held-out examples of that probability,
    non-decreasing in `p_k` (`isotonic_knots`).

    Args:
        outputs: Held-out model outputs `(N, K)`: logits or probabilities.
        labels: Integer class ids `(N,)` or one-hot rows `(N, K)`.
        from_logits: Whether `outputs` are logits; `None` detects it.
        max_knots: The most knots a map may have (the layer's capacity).

    Returns:
        `(x, y)`: float64 arrays `(K, max_knots)`, each class's knots padded
        at the end by repeating its last knot.

    Raises:
        ValueError: If a map needs more than `max_knots` knots.
    """
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs), dtype=np.float64)
    if outputs.ndim != 2 or outputs.shape[1] < 2 or outputs.shape[0] == 0:
        raise ValueError(
            "Expected held-out model outputs of shape (num_examples, num_classes) with at "
            f"least one example and 2 classes, got shape {outputs.shape}."
        )
    if not np.all(np.isfinite(outputs)):
        raise ValueError("The held-out model outputs contain NaN or Inf.")
    max_knots = validation.check_int("max_knots", max_knots, minimum=2)
    from_logits = outputs_lib.resolve_from_logits(
        outputs, validation.check_from_logits(from_logits), what="the held-out outputs")
    probabilities = outputs_lib.probabilities_of(outputs, from_logits)
    num_classes = probabilities.shape[1]
    labels = fitted_layer.class_labels(labels, len(probabilities), num_classes)
    knots_x = np.empty((num_classes, max_knots))
    knots_y = np.empty((num_classes, max_knots))
    for k in range(num_classes):
        x, y = isotonic_knots(probabilities[:, k], labels == k)
        if len(x) > max_knots:
            raise ValueError(
                f"The isotonic map of class {k} needs {len(x)} knots, more than "
                f"max_knots={max_knots}: pass a larger max_knots."
            )
        knots_x[k] = np.concatenate([x, np.full(max_knots - len(x), x[-1])])
        knots_y[k] = np.concatenate([y, np.full(max_knots - len(y), y[-1])])
    return knots_x, knots_y


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class IsotonicCalibration(fitted_layer.FittedOutputLayer):
    """Recalibrates class probabilities with isotonic maps fitted on held-out outputs.

    Per class, one against the rest (Zadrozny & Elkan, 2002, and
    scikit-learn's `CalibratedClassifierCV(method="isotonic")`): each
    probability `p_k` goes through its class's non-decreasing map (a
    piecewise-linear curve through the held-out frequencies,
    `isotonic_knots`), and the mapped values are divided by their sum (the
    uniform distribution where they are all 0). Unlike temperature scaling
    this can change the arg-max, and it can give probabilities of exactly 0
    or 1, so the log-likelihood of a surprising label can be infinite.

    The maps are held as non-trainable weights `knots_x` and `knots_y` of
    shape `(K, max_knots)` (padded by repeating the last knot), so `.keras`
    files and exported models carry them exactly. Before fitting they hold
    the identity map.

    The layer always returns probabilities; it takes logits or
    probabilities (`from_logits`, detected at `fit` when `None`).

    Args:
        max_knots: Knots each class's map may have (default 1024; a fit
            that needs more raises, asking for a larger value). The map of
            `N` held-out examples has at most `2N` knots and in practice
            far fewer (the isotonic fit pools most examples).
        from_logits: Whether the layer's inputs are logits (`True`),
            probabilities (`False`) or detected at `fit` (`None`).
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(500, 3)) * 3
    >>> labels = (logits / 3 + rng.gumbel(size=(500, 3))).argmax(axis=1)
    >>> isotonic = IsotonicCalibration().fit(logits, labels)
    >>> probabilities = keras.ops.convert_to_numpy(isotonic(logits.astype("float32")))
    >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=1), 1.0))
    ((500, 3), True)
    """

    def __init__(self, max_knots=DEFAULT_MAX_KNOTS, from_logits=None, **kwargs):
        super().__init__(from_logits=from_logits, **kwargs)
        self.max_knots = validation.check_int("max_knots", max_knots, minimum=2)

    def fitted_weights(self, input_shape):
        num_classes = input_shape[-1]
        if num_classes is None or num_classes < 2:
            raise ValueError(
                "IsotonicCalibration needs at least two classes on the last axis of its "
                f"input, got input shape {input_shape}."
            )
        identity = np.tile(np.linspace(0.0, 1.0, self.max_knots), (num_classes, 1))
        return {"knots_x": ((num_classes, self.max_knots), identity),
                "knots_y": ((num_classes, self.max_knots), identity)}

    def fitted_values(self, outputs, labels):
        knots_x, knots_y = fit_isotonic(outputs, labels, from_logits=self.from_logits,
                                        max_knots=self.max_knots)
        return {"knots_x": knots_x, "knots_y": knots_y}

    def transform(self, inputs):
        ops = keras.ops
        probabilities = outputs_lib.probabilities(inputs, self.from_logits)
        knots_x = ops.cast(self.knots_x, probabilities.dtype)
        knots_y = ops.cast(self.knots_y, probabilities.dtype)
        mapped = []
        for k in range(probabilities.shape[-1]):
            x, y = knots_x[k], knots_y[k]
            p = ops.clip(probabilities[..., k], x[0], x[-1])
            # The segment [x[i], x[i + 1]] holding p; the padding at the end
            # repeats the last knot, so a p at the top gets y[-1].
            upper = ops.clip(ops.searchsorted(x, ops.reshape(p, (-1,)), side="right"), 1,
                             self.max_knots - 1)
            upper = ops.reshape(upper, ops.shape(p))
            x0, x1 = ops.take(x, upper - 1), ops.take(x, upper)
            y0, y1 = ops.take(y, upper - 1), ops.take(y, upper)
            share = ops.where(x1 > x0, (p - x0) / ops.where(x1 > x0, x1 - x0, 1.0), 0.0)
            mapped.append(y0 + share * (y1 - y0))
        mapped = ops.stack(mapped, axis=-1)
        total = ops.sum(mapped, axis=-1, keepdims=True)
        uniform = ops.ones_like(mapped) / probabilities.shape[-1]
        return ops.where(total > 0, mapped / ops.where(total > 0, total, 1.0), uniform)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["max_knots"] = self.max_knots
        return config
