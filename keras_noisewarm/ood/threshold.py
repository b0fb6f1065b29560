"""A layer that accepts or rejects inputs by their OOD score, with a guarantee."""

import math

import keras

from keras_noisewarm.calibration.temperature import _as_logits
from keras_noisewarm.conformal import quantile as conformal_quantiles
from keras_noisewarm.ood import scores

_SCORE_FUNCTIONS = ("msp", "max_logit", "energy")


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class OODThreshold(keras.layers.Layer):
    """Says, for each input, whether its OOD score passes a fitted threshold.

    Append it to a trained classifier and `fit` it on the model's outputs
    for held-out in-distribution inputs: the threshold is then the
    `ceil((n + 1)(1 - alpha))`-th largest of their `n` scores
    (`ood_acceptance_threshold`), so that at least a fraction `1 - alpha`
    of new in-distribution inputs are accepted, on average over held-out
    sets. How many out-of-distribution inputs get rejected depends on the
    model and the score; that is what the OOD metrics measure.

    The threshold is a non-trainable weight `threshold` (`-inf`, accept
    everything, until fitted) that `.keras` files and exported artifacts
    carry. ODIN needs input gradients, so it cannot be a layer on outputs;
    threshold its scores with `ood_acceptance_threshold` directly.

    Args:
        score: `"msp"`, `"max_logit"` or `"energy"` (default), computed from
            the layer's inputs; higher means more in-distribution.
        temperature: Temperature of `"msp"` and `"energy"` (default 1).
        alpha: Largest share of in-distribution inputs to reject, in
            `(0, 1)` (default 0.05).
        from_logits: Whether the inputs are logits (default) or
            probabilities (then only `"msp"` is defined).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Returns (when called):
        A boolean tensor of shape `(N,)`, `True` for accepted
        (in-distribution-looking) inputs.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> held_out_logits = 4 * rng.normal(size=(99, 10)).astype("float32")
    >>> layer = OODThreshold(alpha=0.1).fit(held_out_logits)
    >>> accepted = keras.ops.convert_to_numpy(layer(held_out_logits))
    >>> int(accepted.sum())  # the 90th largest of 99 scores and those above it
    90
    """

    def __init__(self, score="energy", temperature=1.0, alpha=0.05, from_logits=True, **kwargs):
        super().__init__(**kwargs)
        self.score = score
        self.temperature = temperature
        self.alpha = alpha
        self.from_logits = from_logits

    def build(self, input_shape):
        self.threshold = self.add_weight(
            name="threshold",
            shape=(),
            initializer=keras.initializers.Constant(-math.inf),
            trainable=False,
        )

    def scores(self, outputs):
        """The OOD scores of model outputs `(N, K)`, shape `(N,)`."""
        if self.score not in _SCORE_FUNCTIONS:
            raise ValueError(
                f"`score` must be one of {_SCORE_FUNCTIONS}, got {self.score!r}."
            )
        if self.score != "msp" and self.from_logits is not True:
            raise ValueError(
                f"The {self.score!r} score needs logits, but from_logits="
                f"{self.from_logits!r}; use score='msp' or a model without its "
                "final softmax."
            )
        logits = _as_logits(keras.ops.convert_to_tensor(outputs), self.from_logits)
        if self.score == "msp":
            return scores.max_softmax_probability(logits, self.temperature)
        if self.score == "max_logit":
            return scores.max_logit(logits)
        return scores.energy_score(logits, self.temperature)

    def fit(self, id_outputs):
        """Sets the threshold from held-out in-distribution model outputs.

        Args:
            id_outputs: Model outputs `(N, K)` on in-distribution inputs the
                model was not trained on.

        Returns:
            The layer itself, fitted.
        """
        id_scores = self.scores(id_outputs)
        threshold = conformal_quantiles.ood_acceptance_threshold(id_scores, self.alpha)
        if not self.built:
            self.build(tuple(keras.ops.shape(id_outputs)))
        self.threshold.assign(threshold)
        return self

    def call(self, inputs):
        input_scores = self.scores(inputs)
        return keras.ops.greater_equal(
            input_scores, keras.ops.cast(self.threshold, input_scores.dtype)
        )

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape[:-1], dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "score": self.score,
                "temperature": self.temperature,
                "alpha": self.alpha,
                "from_logits": self.from_logits,
            }
        )
        return config
