"""Temperature scaling (Guo et al., 2017): one positive number divides the logits."""

import math

import keras
import numpy as np

from keras_noisewarm.calibration import fitting

# Temperatures outside [1/100, 100] mean the held-out set cannot identify T
# (every prediction right, or every prediction wrong), not a real calibration.
_LOG_TEMPERATURE_BOUNDS = (math.log(1e-2), math.log(1e2))


def fit_temperature(outputs, labels, from_logits=True):
    """Fits the temperature that minimises held-out negative log-likelihood.

    The temperature is searched as `T = exp(log T)`, so it stays positive,
    with L-BFGS-B in float64. A `RuntimeWarning` says when the fit does not
    converge or runs into the search bounds `[0.01, 100]`.

    Fit on examples the model was not trained on (a validation split, or
    half of the test set as in the paper's code); on training examples a
    fitted temperature makes an overconfident model look calibrated.

    Args:
        outputs: Model outputs on the held-out set, shape `(N, K)`: logits,
            or probabilities with `from_logits=False` (their logarithms are
            scaled, which gives the same calibrated probabilities).
        labels: Integer class ids `(N,)` or one-hot rows `(N, K)`.
        from_logits: Whether `outputs` are logits.

    Returns:
        The fitted temperature, a Python float. `T > 1` softens an
        overconfident model, `T < 1` sharpens an underconfident one.

    Example:

    >>> import numpy as np
    >>> # Confident (logit gap 4) but right only 3 times in 4: the best T
    >>> # makes sigmoid(4 / T) = 3/4, that is T = 4 / ln 3.
    >>> logits = np.array([[4.0, 0.0], [4.0, 0.0], [4.0, 0.0], [4.0, 0.0]])
    >>> round(fit_temperature(logits, [0, 0, 0, 1]), 3)
    3.641
    """
    logits = fitting.validated_logits(outputs, from_logits)
    labels = fitting.validated_labels(labels, len(logits), logits.shape[1])

    def objective(parameters):
        temperature = np.exp(parameters[0])
        nll, logit_gradient = fitting.nll_and_gradient(logits / temperature, labels)
        # d(logits / T) / d(log T) = -logits / T.
        gradient = -np.sum(logit_gradient * logits) / temperature
        return nll, np.array([gradient])

    (log_temperature,) = fitting.minimize_nll(
        objective,
        [0.0],
        [_LOG_TEMPERATURE_BOUNDS],
        "Temperature scaling",
        logits,
        labels,
    )
    return float(np.exp(log_temperature))


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class TemperatureScaling(keras.layers.Layer):
    """Divides logits by a fitted temperature: post-hoc calibration as a layer.

    Append it to a trained classifier and fit it on held-out outputs; the
    calibrated model then saves, loads and exports like any Keras model. The
    temperature is held as a non-trainable weight `log_temperature`
    (`T = exp(log_temperature)`, so it stays positive), which `.keras` files
    and exported artifacts carry, and which later training leaves alone.

    Dividing by `T` does not change the arg-max, so accuracy is unchanged.

    Args:
        initial_temperature: Temperature before any fit (default 1.0, the
            identity). Pass a known temperature here to use it without
            fitting.
        from_logits: Whether the layer's inputs are logits (default). With
            `from_logits=False` it takes probabilities and returns calibrated
            probabilities; otherwise it takes and returns logits.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`).

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> rng = np.random.default_rng(0)
    >>> x_val = rng.normal(size=(256, 4))
    >>> logits_val = model.predict(x_val, verbose=0)
    >>> # Labels drawn from softmax(3 * logits): the model is underconfident,
    >>> # and the temperature that fixes it is about 1/3.
    >>> sharp = np.exp(3 * logits_val) / np.exp(3 * logits_val).sum(1, keepdims=True)
    >>> y_val = (rng.random((256, 1)) > sharp.cumsum(axis=1)).sum(axis=1)
    >>> scaling = TemperatureScaling().fit(logits_val, y_val)
    >>> scaling.temperature < 1.0
    True
    >>> calibrated = keras.Sequential([model, scaling])
    >>> calibrated.predict(x_val, verbose=0).shape
    (256, 3)
    """

    def __init__(self, initial_temperature=1.0, from_logits=True, **kwargs):
        super().__init__(**kwargs)
        self.initial_temperature = initial_temperature
        self.from_logits = from_logits

    def build(self, input_shape):
        if not (
            isinstance(self.initial_temperature, (int, float))
            and self.initial_temperature > 0
        ):
            raise ValueError(
                "`initial_temperature` must be a positive number, got "
                f"{self.initial_temperature!r}."
            )
        self.log_temperature = self.add_weight(
            name="log_temperature",
            shape=(),
            initializer=keras.initializers.Constant(
                math.log(self.initial_temperature)
            ),
            trainable=False,
        )

    @property
    def temperature(self):
        """The current temperature as a Python float (fitted, or initial)."""
        if not self.built:
            return float(self.initial_temperature)
        return float(np.exp(keras.ops.convert_to_numpy(self.log_temperature)))

    def fit(self, outputs, labels):
        """Fits the temperature on held-out model outputs; see `fit_temperature`.

        Args:
            outputs: Held-out logits (or probabilities if
                `from_logits=False`), shape `(N, K)`.
            labels: Integer class ids `(N,)` or one-hot rows `(N, K)`.

        Returns:
            The layer itself, fitted.
        """
        temperature = fit_temperature(outputs, labels, from_logits=self.from_logits)
        if not self.built:
            self.build(tuple(keras.ops.shape(outputs)))
        self.log_temperature.assign(math.log(temperature))
        return self

    def call(self, inputs):
        logits = _as_logits(inputs, self.from_logits)
        scaled = logits / keras.ops.exp(
            keras.ops.cast(self.log_temperature, logits.dtype)
        )
        return scaled if self.from_logits else keras.ops.softmax(scaled, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "initial_temperature": self.initial_temperature,
                "from_logits": self.from_logits,
            }
        )
        return config


def _as_logits(inputs, from_logits):
    if from_logits not in (True, False):
        raise ValueError(f"`from_logits` must be True or False, got {from_logits!r}.")
    if from_logits:
        return inputs
    floor = keras.ops.cast(fitting._PROBABILITY_FLOOR, inputs.dtype)
    return keras.ops.log(keras.ops.maximum(inputs, floor))
