"""Vector scaling (Guo et al., 2017): one scale and one bias per class."""

import keras
import numpy as np

from keras_noisewarm.calibration import fitting
from keras_noisewarm.calibration.temperature import _as_logits


def fit_vector_scaling(outputs, labels, from_logits=True):
    """Fits per-class scales `w` and biases `b` of `logits * w + b` by held-out NLL.

    Unlike temperature scaling, this can change the arg-max (and so the
    accuracy), and with `2K` parameters it needs more held-out examples to
    avoid overfitting them. A `RuntimeWarning` says when the fit does not
    converge.

    Args:
        outputs: Held-out model outputs `(N, K)`: logits, or probabilities
            with `from_logits=False` (their logarithms are scaled).
        labels: Integer class ids `(N,)` or one-hot rows `(N, K)`.
        from_logits: Whether `outputs` are logits.

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
    logits = fitting.validated_logits(outputs, from_logits)
    num_classes = logits.shape[1]
    labels = fitting.validated_labels(labels, len(logits), num_classes)

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
class VectorScaling(keras.layers.Layer):
    """Computes `logits * scale + bias` with a fitted scale and bias per class.

    The post-hoc "vector scaling" baseline of the paper's code, as a layer
    to append to a trained classifier. `scale` and `bias` are non-trainable
    weights of shape `(K,)`, starting at the identity (ones and zeros), that
    `.keras` files and exported artifacts carry.

    Args:
        from_logits: Whether the layer's inputs are logits (default). With
            `from_logits=False` it takes probabilities and returns calibrated
            probabilities; otherwise it takes and returns logits.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits, labels = rng.normal(size=(200, 3)), rng.integers(0, 3, size=200)
    >>> scaling = VectorScaling().fit(logits, labels)
    >>> tuple(scaling(logits.astype("float32")).shape)
    (200, 3)
    """

    def __init__(self, from_logits=True, **kwargs):
        super().__init__(**kwargs)
        self.from_logits = from_logits

    def build(self, input_shape):
        num_classes = input_shape[-1]
        if num_classes is None:
            raise ValueError(
                "VectorScaling needs the number of classes: the last axis of "
                f"its input must be known, got input shape {input_shape}."
            )
        self.scale = self.add_weight(
            name="scale", shape=(num_classes,), initializer="ones", trainable=False
        )
        self.bias = self.add_weight(
            name="bias", shape=(num_classes,), initializer="zeros", trainable=False
        )

    def fit(self, outputs, labels):
        """Fits `scale` and `bias` on held-out outputs; see `fit_vector_scaling`.

        Args:
            outputs: Held-out logits (or probabilities if
                `from_logits=False`), shape `(N, K)`.
            labels: Integer class ids `(N,)` or one-hot rows `(N, K)`.

        Returns:
            The layer itself, fitted.
        """
        scale, bias = fit_vector_scaling(outputs, labels, from_logits=self.from_logits)
        if not self.built:
            self.build(tuple(keras.ops.shape(outputs)))
        if tuple(self.scale.shape) != scale.shape:
            raise ValueError(
                f"The layer was built for {self.scale.shape[0]} classes, but the "
                f"outputs to fit have {scale.shape[0]}."
            )
        self.scale.assign(scale)
        self.bias.assign(bias)
        return self

    def call(self, inputs):
        logits = _as_logits(inputs, self.from_logits)
        scaled = logits * keras.ops.cast(self.scale, logits.dtype) + keras.ops.cast(
            self.bias, logits.dtype
        )
        return scaled if self.from_logits else keras.ops.softmax(scaled, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"from_logits": self.from_logits})
        return config
