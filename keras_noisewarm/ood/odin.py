"""ODIN (Liang et al., 2018): temperature scaling plus a small input perturbation.

ODIN nudges each input a step `epsilon` in the direction that makes the
model *more* confident in its own prediction, then reads the maximum softmax
probability at a high temperature. In-distribution inputs gain more
confidence from the nudge than out-of-distribution ones, which separates
them.

Conventions, since implementations differ:

- The loss is the cross-entropy of `softmax(logits / T)` against the
  model's own predicted class (arg-max of the logits), and the same `T` is
  used again in the final score.
- The step is `x - epsilon * sign(grad_x loss) / input_std`: `epsilon` is in
  the units of the raw input (pixels scaled to `[0, 1]` in Liang et al.), and
  dividing by the per-channel standard deviation of the model's input
  normalisation turns it into the units the model sees. For a model that
  normalises inside itself, or takes raw inputs, keep `input_std=1`.
- `sign(0) = 0`: an input coordinate that does not affect the loss is left
  alone (the reference code maps a zero gradient to `+1`).
- The model runs in inference mode (`training=False`).
"""

import keras
import numpy as np

from keras_noisewarm import backend
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation
from keras_noisewarm.ood import scores

DEFAULT_TEMPERATURE = 1000.0
DEFAULT_EPSILON = 0.0014


def odin_perturbation(
    model,
    inputs,
    temperature=DEFAULT_TEMPERATURE,
    epsilon=DEFAULT_EPSILON,
    input_std=1.0,
    from_logits=None,
):
    """The inputs after ODIN's step towards higher confidence.

    Args:
        model: A Keras classifier taking `inputs` in one batch.
        inputs: Floating NumPy array or tensor, a batch of model inputs.
        temperature: Positive temperature `T` of the loss (1000 in ODIN).
        epsilon: Step size in raw input units (0.0014 in ODIN); 0 means no
            perturbation.
        input_std: The model's input normalisation standard deviation: a
            number, or one value per channel (broadcast against the last
            axis of the inputs; use shape `(C, 1, 1)` for channels-first).
        from_logits: Whether the model outputs logits; with `False` its
            probabilities' logarithms are used, which gives the same result.
            `None` (default) detects it from the model's outputs on `inputs`.

    Returns:
        A tensor shaped like `inputs`.
    """
    validation.check_positive_number("temperature", temperature)
    validation.check_number("epsilon", epsilon, minimum=0.0, strict=False)
    inputs = keras.ops.convert_to_tensor(inputs)
    if "float" not in keras.backend.standardize_dtype(inputs.dtype):
        inputs = keras.ops.cast(inputs, keras.backend.floatx())
    input_std = keras.ops.convert_to_tensor(input_std, dtype=inputs.dtype)
    if not bool(keras.ops.all(input_std > 0)):
        raise ValueError("`input_std` must be positive.")
    if from_logits is None:
        from_logits = outputs_lib.resolve_from_logits(
            model(inputs, training=False), None, what="the model outputs"
        )

    def loss(x):
        logits = outputs_lib.logits(model(x, training=False), from_logits)
        predicted = keras.ops.argmax(logits, axis=-1)
        cross_entropy = keras.losses.sparse_categorical_crossentropy(
            predicted, logits / temperature, from_logits=True
        )
        return keras.ops.sum(cross_entropy)

    gradient = backend.input_gradient(loss, inputs)
    return inputs - epsilon * keras.ops.sign(gradient) / input_std


def odin_score(
    model,
    inputs,
    temperature=DEFAULT_TEMPERATURE,
    epsilon=DEFAULT_EPSILON,
    input_std=1.0,
    from_logits=None,
):
    """ODIN score: `max_k softmax(f(x_perturbed) / T)_k`; higher is more in-distribution.

    See the module docstring for the conventions (loss, step, units).

    Args:
        model: A Keras classifier taking `inputs` in one batch.
        inputs: Floating NumPy array or tensor, a batch of model inputs.
        temperature: Positive temperature `T` (1000 in ODIN).
        epsilon: Step size in raw input units (0.0014 in ODIN).
        input_std: The model's input normalisation standard deviation, a
            number or one value per channel.
        from_logits: Whether the model outputs logits; `None` detects it.

    Returns:
        A tensor of shape `(N,)` with values in `[1/K, 1]` (close to `1/K`
        at `T = 1000`: only the ranking matters).

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    >>> tuple(odin_score(model, x).shape)
    (5,)
    """
    inputs = keras.ops.convert_to_tensor(inputs)
    if from_logits is None:
        from_logits = outputs_lib.resolve_from_logits(
            model(inputs, training=False), None, what="the model outputs"
        )
    perturbed = odin_perturbation(
        model,
        inputs,
        temperature=temperature,
        epsilon=epsilon,
        input_std=input_std,
        from_logits=from_logits,
    )
    logits = outputs_lib.logits(model(perturbed, training=False), from_logits)
    return scores.max_softmax_probability(logits, temperature=temperature)


@scores.register_score("odin")
class ODIN(scores.OODScore):
    """ODIN: input perturbation plus temperature; see `odin_score` for conventions.

    ODIN needs gradients with respect to the inputs, so it scores a model
    and its inputs, never outputs alone (it cannot be an `OODThreshold`'s
    score).

    Args:
        temperature: Positive temperature (default 1000, as in ODIN).
        epsilon: Perturbation size in raw input units (default 0.0014).
        input_std: Standard deviation of the model's input normalisation,
            a number or one value per channel (default 1: no normalisation).
        from_logits: Whether the model outputs logits; `None` detects it.
        name: Report key, default `"odin"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> ODIN()(model, np.ones((2, 4), "float32")).shape
    (2,)
    """

    def __init__(
        self,
        temperature=DEFAULT_TEMPERATURE,
        epsilon=DEFAULT_EPSILON,
        input_std=1.0,
        from_logits=None,
        name=None,
    ):
        super().__init__(from_logits=from_logits, name=name)
        self.temperature = validation.check_positive_number("temperature", temperature)
        self.epsilon = validation.check_number("epsilon", epsilon, minimum=0.0, strict=False)
        if np.any(np.asarray(input_std) <= 0):
            raise ValueError(f"`input_std` must be positive, got {input_std!r}.")
        self.input_std = input_std

    def __call__(self, model, inputs, batch_size=scores.DEFAULT_BATCH_SIZE):
        validation.check_int("batch_size", batch_size)
        batch_scores = []
        for start in range(0, len(inputs), batch_size):
            batch_score = odin_score(
                model,
                inputs[start : start + batch_size],
                temperature=self.temperature,
                epsilon=self.epsilon,
                input_std=self.input_std,
                from_logits=self.from_logits,
            )
            batch_scores.append(keras.ops.convert_to_numpy(batch_score))
        return np.concatenate(batch_scores)

    def get_config(self):
        input_std = self.input_std
        if isinstance(input_std, np.ndarray):
            input_std = input_std.tolist()
        return {
            "temperature": self.temperature,
            "epsilon": self.epsilon,
            "input_std": input_std,
            **super().get_config(),
        }
