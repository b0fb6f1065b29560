"""Split conformal prediction as Keras layers with the fitted quantile as a weight.

Append a layer to a trained classifier, `fit` it on a held-out calibration
set, and the model returns prediction sets: boolean `(N, K)` arrays that
hold the true class with probability at least `1 - alpha`, on average over
calibration sets, for new inputs drawn like the calibration inputs. Nothing
is promised for inputs from another distribution.
"""

import math

import keras

from keras_noisewarm import fitted_layer
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation
from keras_noisewarm.conformal import quantile as conformal_quantiles
from keras_noisewarm.conformal import scores
from keras_noisewarm.conformal import sets as conformal_sets


class _ConformalPredictionSets(fitted_layer.FittedOutputLayer):
    """Base class: maps model outputs to conformal prediction sets.

    Subclasses say how classes are scored (`class_scores`); the base class
    fits the conformal quantile and applies it. The quantile is a
    non-trainable weight `quantile`, `inf` (every class in every set) until
    `fit` is called, carried by `.keras` files and exported artifacts.

    Args:
        alpha: Miscoverage level in `(0, 1)`: sets miss the true class of at
            most this share of inputs on average (default 0.1).
        from_logits: Whether the layer's inputs are logits (turned into
            probabilities with softmax) or probabilities; `None` (default)
            detects it at `fit`.
        **kwargs: Standard `keras.layers.Layer` arguments.
    """

    def __init__(self, alpha=0.1, from_logits=None, **kwargs):
        super().__init__(from_logits=from_logits, **kwargs)
        self.alpha = validation.check_fraction("alpha", alpha)

    def class_scores(self, probabilities):
        """Non-conformity scores of every class, shape `(N, K)`."""
        raise NotImplementedError

    def fitted_weights(self, input_shape):
        return {"quantile": ((), math.inf)}

    def fitted_values(self, outputs, labels):
        probabilities = self._probabilities(keras.ops.convert_to_tensor(outputs))
        labels = fitted_layer.class_labels(
            labels, probabilities.shape[0], probabilities.shape[-1]
        )
        calibration_scores = scores.label_scores(self.class_scores(probabilities), labels)
        return {"quantile": conformal_quantiles.conformal_quantile(calibration_scores, self.alpha)}

    def transform(self, inputs):
        class_scores = self.class_scores(self._probabilities(inputs))
        return conformal_sets.prediction_sets(class_scores, self.quantile)

    def evaluate(self, outputs, labels):
        """Coverage and average set size on labelled test outputs.

        Args:
            outputs: Model outputs `(N, K)` on inputs not used in `fit`.
            labels: Integer class ids `(N,)`.

        Returns:
            A dict with `"coverage"` and `"average_set_size"` (floats).
        """
        sets = self(keras.ops.convert_to_tensor(outputs))
        return {
            "coverage": conformal_sets.coverage(sets, labels),
            "average_set_size": conformal_sets.average_set_size(sets),
        }

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape, dtype="bool")

    def get_config(self):
        config = super().get_config()
        config["alpha"] = self.alpha
        return config

    def _probabilities(self, outputs):
        if len(outputs.shape) != 2:
            raise ValueError(
                "Expected model outputs of shape (num_examples, num_classes), got "
                f"shape {tuple(outputs.shape)}."
            )
        if "float" not in keras.backend.standardize_dtype(outputs.dtype):
            outputs = keras.ops.cast(outputs, keras.backend.floatx())
        return outputs_lib.probabilities(outputs, self.from_logits)


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class LACPredictionSets(_ConformalPredictionSets):
    """Conformal prediction sets from LAC scores `1 - p_k`; see `lac_scores`.

    The smallest sets on average; coverage holds on average over inputs,
    not evenly across easy and hard ones.

    Args:
        alpha: Miscoverage level in `(0, 1)` (default 0.1).
        from_logits: Whether the inputs are logits or probabilities; `None`
            (default) detects it at `fit`.
        **kwargs: Standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits = 3 * rng.normal(size=(500, 4)).astype("float32")
    >>> labels = logits.argmax(axis=1)  # a perfect model
    >>> layer = LACPredictionSets(alpha=0.1).fit(logits[:250], labels[:250])
    >>> result = layer.evaluate(logits[250:], labels[250:])
    >>> # About 90% coverage on this split (at least 90% on average over splits).
    >>> 0.85 < result["coverage"] < 0.95, result["average_set_size"] < 1.1
    (True, True)
    """

    def class_scores(self, probabilities):
        return scores.lac_scores(probabilities)


class _AdaptivePredictionSets(_ConformalPredictionSets):
    """Shared set-up of APS and RAPS: the random draw `u`."""

    def __init__(self, alpha=0.1, from_logits=None, randomized=True, seed=None, **kwargs):
        super().__init__(alpha=alpha, from_logits=from_logits, **kwargs)
        self.randomized = validation.check_bool("randomized", randomized)
        self.seed = validation.check_seed("seed", seed)
        # As in keras.layers.Dropout: the generator's state is a variable, so
        # every call draws fresh `u` on every backend, also inside `predict`.
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_config(self):
        config = super().get_config()
        config.update({"randomized": self.randomized, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class APSPredictionSets(_AdaptivePredictionSets):
    """Conformal prediction sets from APS scores; see `aps_scores`.

    Sets grow with the model's uncertainty: classes are added from most to
    least likely until their mass passes the fitted quantile.

    Args:
        alpha: Miscoverage level in `(0, 1)` (default 0.1).
        from_logits: Whether the inputs are logits or probabilities; `None`
            (default) detects it at `fit`.
        randomized: Whether to use the randomised score (default), which
            makes coverage exact on average; the sets of the same input then
            vary from call to call.
        seed: Seed of the random draws (an int or `None`).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(400, 5)).astype("float32")
    >>> labels = rng.integers(0, 5, size=400)  # an uninformative model
    >>> layer = APSPredictionSets(alpha=0.2, seed=0).fit(logits[:200], labels[:200])
    >>> keras.ops.convert_to_numpy(layer(logits[200:])).shape
    (200, 5)
    """

    def class_scores(self, probabilities):
        return scores.aps_scores(
            probabilities, randomized=self.randomized, seed=self.seed_generator
        )


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class RAPSPredictionSets(_AdaptivePredictionSets):
    """Conformal prediction sets from RAPS scores; see `raps_scores`.

    Args:
        alpha: Miscoverage level in `(0, 1)` (default 0.1).
        from_logits: Whether the inputs are logits or probabilities; `None`
            (default) detects it at `fit`.
        penalty: Cost per rank beyond `k_reg` (default 0.01).
        k_reg: Ranks free of penalty (default 1).
        randomized: Whether to use the randomised score (default).
        seed: Seed of the random draws (an int or `None`).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> logits = rng.normal(size=(400, 5)).astype("float32")
    >>> labels = rng.integers(0, 5, size=400)
    >>> layer = RAPSPredictionSets(alpha=0.2, seed=0).fit(logits[:200], labels[:200])
    >>> 0.0 <= layer.evaluate(logits[200:], labels[200:])["coverage"] <= 1.0
    True
    """

    def __init__(
        self,
        alpha=0.1,
        from_logits=None,
        penalty=0.01,
        k_reg=1,
        randomized=True,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            alpha=alpha, from_logits=from_logits, randomized=randomized, seed=seed, **kwargs
        )
        self.penalty = validation.check_number("penalty", penalty, minimum=0.0, strict=False)
        self.k_reg = validation.check_int("k_reg", k_reg, minimum=0)

    def class_scores(self, probabilities):
        return scores.raps_scores(
            probabilities,
            penalty=self.penalty,
            k_reg=self.k_reg,
            randomized=self.randomized,
            seed=self.seed_generator,
        )

    def get_config(self):
        config = super().get_config()
        config.update({"penalty": self.penalty, "k_reg": self.k_reg})
        return config
