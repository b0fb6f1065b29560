"""Temperature scaling (Guo et al., 2017): one positive number divides the logits."""

import math

import keras
import numpy as np

from keras_noisewarm import fitted_layer
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation
from keras_noisewarm.posthoc import fitting

# Temperatures outside [1/100, 100] mean the held-out set cannot identify T
# (every prediction right, or every prediction wrong), not a real calibration.
_LOG_TEMPERATURE_BOUNDS = (math.log(1e-2), math.log(1e2))


def fit_temperature(outputs, labels, from_logits=None):
    """Fits the temperature that minimises held-out negative log-likelihood.

    The temperature is searched as `T = exp(log T)`, so it stays positive,
    with L-BFGS-B in float64. A `RuntimeWarning` says when the fit does not
    converge or runs into the search bounds `[0.01, 100]`.

    Fit on examples the model was not trained on (a validation split, or
    half of the test set as in the paper's code); on training examples a
    fitted temperature makes an overconfident model look calibrated.

    Args:
        outputs: Model outputs on the held-out set, shape `(N, K)`: logits,
            or probabilities (their logarithms are scaled, which gives the
            same calibrated probabilities).
        labels: Integer class ids `(N,)` or one-hot rows `(N, K)`.
        from_logits: Whether `outputs` are logits; `None` (default) detects
            it (see `keras_noisewarm.outputs`): probabilities given as logits
            would give a wrong temperature, so `True` on outputs that look
            like probabilities warns.

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
    outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
    from_logits = outputs_lib.resolve_from_logits(
        outputs, validation.check_from_logits(from_logits), what="the held-out outputs"
    )
    return _fitted_temperature(fitting.held_out_logits(outputs, from_logits), labels)


def _fitted_temperature(logits, labels):
    labels = fitted_layer.class_labels(labels, len(logits), logits.shape[1])

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
class TemperatureScaling(fitted_layer.FittedOutputLayer):
    """Divides logits by a fitted temperature: post-hoc calibration as a layer.

    Append it to a trained classifier and fit it on held-out outputs; the
    calibrated model then saves, loads and exports like any Keras model. The
    temperature is held as a non-trainable weight `log_temperature`
    (`T = exp(log_temperature)`, so it stays positive), which `.keras` files
    and exported artifacts carry, and which later training leaves alone.

    Dividing by `T` does not change the arg-max, so accuracy is unchanged.

    Args:
        initial_temperature: A known temperature to use without fitting, or
            `None` (default): the identity `T = 1` until `fit` is called. A
            layer given a temperature counts as fitted (`is_fitted`).
        from_logits: Whether the layer's inputs are logits (it then returns
            logits) or probabilities (it then returns calibrated
            probabilities). `None` (default) detects it from the outputs
            given to `fit` and keeps the answer.
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
    >>> scaling.temperature < 1.0, scaling.from_logits
    (True, True)
    >>> calibrated = keras.Sequential([model, scaling])
    >>> calibrated.predict(x_val, verbose=0).shape
    (256, 3)
    """

    def __init__(self, initial_temperature=None, from_logits=None, **kwargs):
        super().__init__(from_logits=from_logits, **kwargs)
        if initial_temperature is not None:
            initial_temperature = validation.check_positive_number(
                "initial_temperature", initial_temperature
            )
        self.initial_temperature = initial_temperature

    def initially_fitted(self):
        return self.initial_temperature is not None

    def fitted_weights(self, input_shape):
        return {"log_temperature": ((), math.log(self.initial_temperature or 1.0))}

    def fitted_values(self, outputs, labels):
        logits = fitting.held_out_logits(outputs, self.from_logits)
        temperature = _fitted_temperature(logits, labels)
        return {"log_temperature": math.log(temperature)}

    @property
    def temperature(self):
        """The current temperature as a Python float (fitted, or initial)."""
        if not self.built:
            return float(self.initial_temperature or 1.0)
        return float(np.exp(keras.ops.convert_to_numpy(self.log_temperature)))

    def transform(self, inputs):
        logits = outputs_lib.logits(inputs, self.from_logits)
        scaled = logits / keras.ops.exp(
            keras.ops.cast(self.log_temperature, logits.dtype)
        )
        return scaled if self.from_logits else keras.ops.softmax(scaled, axis=-1)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config["initial_temperature"] = self.initial_temperature
        return config
