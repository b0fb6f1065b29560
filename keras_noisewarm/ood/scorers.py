"""OOD scores of a trained model's inputs, as small configurable objects.

Each scorer is called as `scorer(model, inputs)` and returns one NumPy score
per input, higher meaning more in-distribution. `get("energy")` builds one
from its name, as `keras.losses.get` does.
"""

import keras
import numpy as np

from keras_noisewarm.calibration.temperature import _as_logits
from keras_noisewarm.ood import odin
from keras_noisewarm.ood import scores

DEFAULT_BATCH_SIZE = 256


class _OODScore:
    """Base class: a score computed from a model and a batch of its inputs.

    Args:
        from_logits: Whether the model outputs logits (default) or
            probabilities.
        name: Key of the score in `evaluate_ood` tables; defaults to the
            short name of the score (`"msp"`, `"max_logit"`, ...).
    """

    default_name = None

    def __init__(self, from_logits=True, name=None):
        self.from_logits = from_logits
        self.name = name

    @property
    def key(self):
        """The name this score is reported under."""
        return self.name or self.default_name

    def __call__(self, model, inputs, batch_size=DEFAULT_BATCH_SIZE):
        """Scores `inputs` with `model`.

        Args:
            model: A trained Keras classifier.
            inputs: Inputs the model accepts (a NumPy array for ODIN).
            batch_size: Inputs per forward pass.

        Returns:
            A float NumPy array of shape `(N,)`, higher meaning more
            in-distribution.
        """
        raise NotImplementedError

    def get_config(self):
        return {"from_logits": self.from_logits, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


class _LogitScore(_OODScore):
    """A score that is a function of the model's outputs alone."""

    needs_true_logits = False

    def __call__(self, model, inputs, batch_size=DEFAULT_BATCH_SIZE):
        outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
        return np.asarray(keras.ops.convert_to_numpy(self.score_outputs(outputs)))

    def score_outputs(self, outputs):
        """The score computed from model outputs of shape `(N, K)`, as a tensor."""
        if self.needs_true_logits and self.from_logits is not True:
            raise ValueError(
                f"The {self.key!r} score needs the model's logits, but "
                f"from_logits={self.from_logits!r}. A softmax output hides them "
                "(only their differences survive). Score a copy of the model "
                "without its final softmax, or use the 'msp' score."
            )
        logits = _as_logits(keras.ops.convert_to_tensor(outputs), self.from_logits)
        return self.score_logits(logits)

    def score_logits(self, logits):
        raise NotImplementedError


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class MaxSoftmaxProbability(_LogitScore):
    """Maximum softmax probability at temperature `T`; see `max_softmax_probability`.

    Args:
        temperature: Positive temperature (1 for the plain confidence).
        from_logits: Whether the model outputs logits.
        name: Report key, default `"msp"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> MaxSoftmaxProbability()(model, np.zeros((2, 4), "float32")).tolist()
    [0.3333333432674408, 0.3333333432674408]
    """

    default_name = "msp"

    def __init__(self, temperature=1.0, from_logits=True, name=None):
        super().__init__(from_logits=from_logits, name=name)
        self.temperature = temperature

    def score_logits(self, logits):
        return scores.max_softmax_probability(logits, temperature=self.temperature)

    def get_config(self):
        return {"temperature": self.temperature, **super().get_config()}


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class MaxLogit(_LogitScore):
    """Maximum logit; see `max_logit`. Needs a model that outputs logits.

    Args:
        from_logits: Must be `True` (kept for a uniform interface).
        name: Report key, default `"max_logit"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> MaxLogit()(model, np.zeros((2, 4), "float32")).tolist()
    [0.0, 0.0]
    """

    default_name = "max_logit"
    needs_true_logits = True

    def score_logits(self, logits):
        return scores.max_logit(logits)


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class Energy(_LogitScore):
    """Negative energy `T * logsumexp(logits / T)`; see `energy_score`.

    Needs a model that outputs logits.

    Args:
        temperature: Positive temperature (1 in Liu et al., 2020).
        from_logits: Must be `True` (kept for a uniform interface).
        name: Report key, default `"energy"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> np.round(Energy()(model, np.zeros((1, 4), "float32")), 4)  # ln 2
    array([0.6931], dtype=float32)
    """

    default_name = "energy"
    needs_true_logits = True

    def __init__(self, temperature=1.0, from_logits=True, name=None):
        super().__init__(from_logits=from_logits, name=name)
        self.temperature = temperature

    def score_logits(self, logits):
        return scores.energy_score(logits, temperature=self.temperature)

    def get_config(self):
        return {"temperature": self.temperature, **super().get_config()}


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class ODIN(_OODScore):
    """ODIN: input perturbation plus temperature; see `odin_score` for conventions.

    Args:
        temperature: Positive temperature (default 1000, as in ODIN).
        epsilon: Perturbation size in raw input units (default 0.0014).
        input_std: Standard deviation of the model's input normalisation,
            a number or one value per channel (default 1: no normalisation).
        from_logits: Whether the model outputs logits.
        name: Report key, default `"odin"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> ODIN()(model, np.ones((2, 4), "float32")).shape
    (2,)
    """

    default_name = "odin"

    def __init__(
        self,
        temperature=odin.DEFAULT_TEMPERATURE,
        epsilon=odin.DEFAULT_EPSILON,
        input_std=1.0,
        from_logits=True,
        name=None,
    ):
        super().__init__(from_logits=from_logits, name=name)
        self.temperature = temperature
        self.epsilon = epsilon
        self.input_std = input_std

    def __call__(self, model, inputs, batch_size=DEFAULT_BATCH_SIZE):
        if not (isinstance(batch_size, int) and batch_size > 0):
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        batches = []
        for start in range(0, len(inputs), batch_size):
            batch_scores = odin.odin_score(
                model,
                inputs[start : start + batch_size],
                temperature=self.temperature,
                epsilon=self.epsilon,
                input_std=self.input_std,
                from_logits=self.from_logits,
            )
            batches.append(keras.ops.convert_to_numpy(batch_scores))
        return np.concatenate(batches)

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


_BY_NAME = {
    "msp": MaxSoftmaxProbability,
    "max_softmax_probability": MaxSoftmaxProbability,
    "max_logit": MaxLogit,
    "energy": Energy,
    "odin": ODIN,
}


def get(identifier, from_logits=True):
    """Returns an OOD scorer from a name, a config dict or a scorer.

    Args:
        identifier: `"msp"` (or `"max_softmax_probability"`),
            `"max_logit"`, `"energy"`, `"odin"`; a dict from
            `keras.saving.serialize_keras_object`; or a scorer, returned
            as is.
        from_logits: Whether the model outputs logits, for scorers built
            from a name.

    Returns:
        A scorer: `scorer(model, inputs)` gives one score per input.

    Example:

    >>> get("energy")
    Energy(temperature=1.0, from_logits=True, name=None)
    """
    if isinstance(identifier, _OODScore):
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()](from_logits=from_logits)
    raise ValueError(
        f"Unknown OOD score {identifier!r}. Use one of {sorted(_BY_NAME)}, or a "
        "scorer object such as keras_noisewarm.ood.ODIN(temperature=1000)."
    )
