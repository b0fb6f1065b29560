"""A layer that flags inputs whose OOD score falls below a fitted threshold."""

import math

import keras

from keras_noisewarm import fitted_layer
from keras_noisewarm import validation
from keras_noisewarm.conformal import quantile as conformal_quantiles
from keras_noisewarm.ood import scores as scores_lib


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class OODThreshold(fitted_layer.FittedOutputLayer):
    """Says, for each input, whether it looks unknown (out-of-distribution).

    Append it to a trained classifier and `fit` it on the model's outputs
    for held-out in-distribution inputs: the threshold is then the
    `ceil((n + 1)(1 - alpha))`-th largest of their `n` scores
    (`ood_acceptance_threshold`), and an input is unknown when its score is
    below it. At most a fraction `alpha` of new in-distribution inputs are
    then flagged, on average over held-out sets. How many
    out-of-distribution inputs get flagged depends on the model and the
    score; that is what the OOD metrics measure.

    The threshold is a non-trainable weight `threshold` (`-inf`, nothing
    unknown, until fitted) that `.keras` files and exported artifacts carry.
    The score is any registered score computed from outputs alone
    (`keras_noisewarm.ood.score_names()`); ODIN needs input gradients, so it
    cannot be a layer on outputs: threshold its scores with
    `ood_acceptance_threshold` directly.

    Args:
        score: A registered score name (default `"energy"`; `"msp"`,
            `"max_logit"`, `"entropy"`, ...), or a scorer object such as
            `keras_noisewarm.ood.Energy(temperature=2.0)`. Higher scores are
            more in-distribution.
        temperature: Temperature of a score given by name that takes one
            (`"msp"`, `"energy"`); `None` keeps the score's default (1).
        alpha: Largest share of in-distribution inputs to flag, in `(0, 1)`
            (default 0.05).
        from_logits: Whether the inputs are logits or probabilities; `None`
            (default) detects it at `fit`. Probabilities allow only scores
            that do not need logits (`"msp"`, `"entropy"`).
        **kwargs: Standard `keras.layers.Layer` arguments.

    Returns (when called):
        A boolean tensor of shape `(N,)`, `True` for unknown
        (out-of-distribution-looking) inputs. `scores(outputs)` gives the
        scores themselves.

    Example:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> held_out_logits = 4 * rng.normal(size=(99, 10)).astype("float32")
    >>> layer = OODThreshold(alpha=0.1).fit(held_out_logits)
    >>> unknown = keras.ops.convert_to_numpy(layer(held_out_logits))
    >>> int(unknown.sum())  # 9 of the 99 scores lie below the 90th largest
    9
    """

    def __init__(self, score="energy", temperature=None, alpha=0.05, from_logits=None, **kwargs):
        super().__init__(from_logits=from_logits, **kwargs)
        extra = {} if temperature is None else {"temperature": temperature}
        scorer = scores_lib.get(score, from_logits=self.from_logits, **extra)
        if not isinstance(scorer, scores_lib.OutputScore):
            raise ValueError(
                f"OODThreshold needs a score computed from the model's outputs; "
                f"{scorer.key!r} is not one (ODIN needs input gradients). Use one "
                f"of {scores_lib.score_names()} other than 'odin'."
            )
        if self.from_logits is False:
            scorer.check_logits(False)
        self.scorer = scorer
        self.score = score if isinstance(score, str) else keras.saving.serialize_keras_object(score)
        self.temperature = temperature
        self.alpha = validation.check_fraction("alpha", alpha)

    def fitted_weights(self, input_shape):
        return {"threshold": ((), -math.inf)}

    def fitted_values(self, outputs, labels):
        id_scores = self.scores(outputs)
        return {"threshold": conformal_quantiles.ood_acceptance_threshold(id_scores, self.alpha)}

    def scores(self, outputs):
        """The OOD scores of model outputs `(N, K)`, shape `(N,)`."""
        return self.scorer.score_outputs(outputs, from_logits=self.from_logits)

    def transform(self, inputs):
        input_scores = self.scores(inputs)
        return keras.ops.less(input_scores, keras.ops.cast(self.threshold, input_scores.dtype))

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(inputs.shape[:-1], dtype="bool")

    def get_config(self):
        config = super().get_config()
        config.update(
            {"score": self.score, "temperature": self.temperature, "alpha": self.alpha}
        )
        return config
