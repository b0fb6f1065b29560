"""Vector scaling (Guo et al., 2017): one scale and one bias per class."""

import keras
import numpy as np

from keras_noisewarm import fitted_layer
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation
from keras_noisewarm.posthoc import fitting


def fit_vector_scaling(outputs, labels, from_logits=None):
    """Fits per-class scales `w` and biases `b` of `logits * w + b` by held-out NLL.

    Unlike temperature scaling, this can change the arg-max (and so the
    accuracy), and with `2K` parameters it needs more held-out examples to
    avoid overfitting them. A `RuntimeWarning` says when the fit does not
    converge.

    Args:
        outputs: Held-out model outputs `(N, K)`: logits, or probabilities
            (their logarithms are scaled).
        labels: Integer class ids `(N,)` or one-hot rows `(N, K)`.
        from_logits: Whether `outputs` are logits; `None` (default) detects
            it (see `keras_noisewarm.outputs`).

    Returns:
        `(scale, bias)`: two float64 NumPy arrays of shape `(K,)`.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(200, 3))
    >>> labels = (logits + rng.normal(size=(200, 3))).argmax(axis=1)  # 68% right
    >>> scale, bias = fit_vector_scaling(logits, labels)
    >>> scale.shape, bias.shape
    ((3,), (3,))
    """
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
    from_logits = outputs_lib.resolve_from_logits(
        outputs, validation.check_from_logits(from_logits), what="the held-out outputs"
    )
    return _fitted_scale_and_bias(fitting.held_out_logits(outputs, from_logits), labels)


def _fitted_scale_and_bias(logits, labels):
    num_classes = logits.shape[1]
    labels = fitted_layer.class_labels(labels, len(logits), num_classes)

    def objective(parameters):
        scale, bias = parameters[:num_classes], parameters[num_classes:]
        nll, logit_gradient = fitting.nll_and_gradient(logits * scale + bias, labels)
        gradient = np.concatenate(
            [np.sum(logit_gradient * logits, axis=0), np.sum(logit_gradient, axis=0)]
        )
        return nll, gradient

    initial = np.concatenate([np.ones(num_classes), np.zeros(num_classes)])
    parameters = fitting.minimize_nll(
        objective,
        initial,
        [(None, None)] * (2 * num_classes),
        "Vector scaling",
        logits,
        labels,
    )
    return parameters[:num_classes], parameters[num_classes:]


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class VectorScaling(fitted_layer.FittedOutputLayer):
    """Computes `logits * scale + bias` with a fitted scale and bias per class.

    The post-hoc "vector scaling" baseline of the paper's code, as a layer
    to append to a trained classifier. `scale` and `bias` are non-trainable
    weights of shape `(K,)`, starting at the identity (ones and zeros), that
    `.keras` files and exported artifacts carry.

    Args:
        from_logits: Whether the layer's inputs are logits (it then returns
            logits) or probabilities (it then returns calibrated
            probabilities); `None` (default) detects it at `fit`.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits, labels = rng.normal(size=(200, 3)), rng.integers(0, 3, size=200)
    >>> scaling = VectorScaling().fit(logits, labels)
    >>> tuple(scaling(logits.astype("float32")).shape)
    (200, 3)
    """

    def fitted_weights(self, input_shape):
        num_classes = input_shape[-1]
        if num_classes is None:
            raise ValueError(
                "VectorScaling needs the number of classes: the last axis of "
                f"its input must be known, got input shape {input_shape}."
            )
        return {"scale": ((num_classes,), 1.0), "bias": ((num_classes,), 0.0)}

    def fitted_values(self, outputs, labels):
        logits = fitting.held_out_logits(outputs, self.from_logits)
        scale, bias = _fitted_scale_and_bias(logits, labels)
        return {"scale": scale, "bias": bias}

    def transform(self, inputs):
        logits = outputs_lib.logits(inputs, self.from_logits)
        scaled = logits * keras.ops.cast(self.scale, logits.dtype) + keras.ops.cast(
            self.bias, logits.dtype
        )
        return scaled if self.from_logits else keras.ops.softmax(scaled, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape
