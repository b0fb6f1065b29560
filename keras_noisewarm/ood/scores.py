"""Out-of-distribution scores: functions of logits, scorer objects, one registry.

Convention for every score in this package: **higher means more
in-distribution**. Scores of float16 or bfloat16 outputs are computed in
float32 (see `keras_noisewarm.outputs.at_least_float32`). A detector accepts an input as in-distribution when its
score is at least a threshold and flags it as out-of-distribution otherwise.

Each score comes twice: a function of logits (`energy_score(logits)`), and
a small configurable object, called as `scorer(model, inputs)`, that
predicts and scores one NumPy value per input. The objects are registered
by name, so that every place that lets a user choose a score (the
`OODThreshold` layer, the `CalibrationMonitor`, `evaluate_ood`, the A/B
comparison) looks it up the same way: `get("energy")`, as `keras.losses.get`
does. A new score is one function, one class with `@register_score(...)`,
and its test.
"""

import keras
import numpy as np

from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation

DEFAULT_BATCH_SIZE = 256

_REGISTRY = {}


# ----------------------------------------------------------------------------
# Scores as functions of logits.


def max_softmax_probability(logits, temperature=1.0):
    """Maximum softmax probability, the baseline score (Hendrycks & Gimpel, 2017).

    `max_k softmax(logits / T)_k`. With `T = 1` this is the model's
    confidence, the score the paper uses.

    Args:
        logits: Tensor of shape `(N, K)`. Log-probabilities work too: they
            differ from the logits by a constant per example, which softmax
            ignores.
        temperature: Positive temperature `T`.

    Returns:
        A tensor of shape `(N,)` with values in `[1/K, 1]`.

    Example:

    >>> import numpy as np
    >>> logits = np.array([[2.0, 0.0], [0.0, 0.0]], "float32")
    >>> np.round(keras.ops.convert_to_numpy(max_softmax_probability(logits)), 4)
    array([0.8808, 0.5   ], dtype=float32)
    """
    validation.check_positive_number("temperature", temperature)
    logits = outputs_lib.at_least_float32(logits)
    return keras.ops.max(keras.ops.softmax(logits / temperature, axis=-1), axis=-1)


def max_logit(logits):
    """Maximum logit (Hendrycks et al., 2022): `max_k logits_k`.

    Needs true logits: a model ending in softmax gives log-probabilities,
    whose maximum is just the log of the maximum softmax probability.

    Args:
        logits: Tensor of shape `(N, K)`.

    Returns:
        A tensor of shape `(N,)`.

    Example:

    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(max_logit(np.array([[2.0, -1.0]]))).tolist()
    [2.0]
    """
    return keras.ops.max(outputs_lib.at_least_float32(logits), axis=-1)


def energy_score(logits, temperature=1.0):
    """Negative free energy (Liu et al., 2020): `T * logsumexp(logits / T)`.

    Liu et al. define the energy `E(x) = -T * logsumexp(f(x) / T)` and detect
    with `-E(x)`, which this returns, so that higher means more
    in-distribution like every score here. Needs true logits: on
    log-probabilities it is constant (zero at `T = 1`).

    Args:
        logits: Tensor of shape `(N, K)`.
        temperature: Positive temperature `T` (1 in Liu et al.).

    Returns:
        A tensor of shape `(N,)`.

    Example:

    >>> import numpy as np
    >>> logits = np.array([[0.0, 0.0]], "float32")
    >>> np.round(keras.ops.convert_to_numpy(energy_score(logits)), 4)  # ln 2
    array([0.6931], dtype=float32)
    """
    validation.check_positive_number("temperature", temperature)
    logits = outputs_lib.at_least_float32(logits)
    return temperature * keras.ops.logsumexp(logits / temperature, axis=-1)


def negative_entropy(logits):
    """Negative predictive entropy: `sum_k p_k log p_k` with `p = softmax(logits)`.

    The entropy of the predicted distribution is 0 for a one-hot prediction
    and `log K` for a uniform one; its negative is higher for more confident
    (more in-distribution) inputs. Unlike the maximum softmax probability it
    looks at every class, not only the top one. Log-probabilities work too.

    Args:
        logits: Tensor of shape `(N, K)`.

    Returns:
        A tensor of shape `(N,)` with values in `[-log K, 0]`.

    Example:

    >>> import numpy as np
    >>> uniform = np.zeros((1, 4), "float32")
    >>> np.round(keras.ops.convert_to_numpy(negative_entropy(uniform)), 4)  # -ln 4
    array([-1.3863], dtype=float32)
    """
    logits = outputs_lib.at_least_float32(logits)
    log_probabilities = keras.ops.log_softmax(logits, axis=-1)
    return keras.ops.sum(keras.ops.exp(log_probabilities) * log_probabilities, axis=-1)


# ----------------------------------------------------------------------------
# The registry.


def register_score(*names):
    """Class decorator: makes an `OODScore` findable by `get(name)`.

    Args:
        *names: The names (lower case) the score is found under; the first
            is its report key.
    """

    def register(cls):
        for name in names:
            if name in _REGISTRY:
                raise ValueError(f"An OOD score is already registered as {name!r}.")
            _REGISTRY[name] = cls
        cls.default_name = names[0]
        return keras.saving.register_keras_serializable(package="keras_noisewarm")(cls)

    return register


def score_names():
    """The names `get` accepts, sorted.

    Example:

    >>> "energy" in score_names()
    True
    """
    return sorted(_REGISTRY)


def get(identifier, from_logits=None, **kwargs):
    """Returns an OOD scorer from a name, a config dict or a scorer.

    Args:
        identifier: A registered name (`score_names()`: `"msp"`,
            `"max_logit"`, `"energy"`, `"entropy"`, `"odin"`, ...); a dict
            from `keras.saving.serialize_keras_object`; or a scorer,
            returned as is.
        from_logits: Whether the model outputs logits, for scorers built
            from a name (`None`: detect it from the outputs).
        **kwargs: Further arguments of the scorer built from a name, e.g.
            `temperature=2.0`.

    Returns:
        A scorer: `scorer(model, inputs)` gives one score per input.

    Example:

    >>> get("energy")
    Energy(temperature=1.0, from_logits=None, name=None)
    """
    if isinstance(identifier, OODScore):
        if kwargs:
            raise ValueError(
                f"Arguments {sorted(kwargs)} go with a score name, not with the "
                f"scorer {identifier!r}: build the scorer with them instead."
            )
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        cls = _REGISTRY[identifier.lower()]
        try:
            return cls(from_logits=from_logits, **kwargs)
        except TypeError as error:
            raise ValueError(f"The {identifier!r} score takes no {sorted(kwargs)}: {error}") from None
    raise ValueError(
        f"Unknown OOD score {identifier!r}. Use one of {score_names()}, or a "
        "scorer object such as keras_noisewarm.ood.ODIN(temperature=1000)."
    )


# ----------------------------------------------------------------------------
# Scorer objects.


class OODScore:
    """Base of the scorers: a score computed from a model and its inputs.

    Args:
        from_logits: Whether the model outputs logits, probabilities
            (`False`), or `None` (default) to detect it from the outputs
            (see `keras_noisewarm.outputs`).
        name: Key of the score in `evaluate_ood` tables; defaults to the
            first name it is registered under (`"msp"`, `"max_logit"`, ...).
    """

    default_name = None

    def __init__(self, from_logits=None, name=None):
        self.from_logits = validation.check_from_logits(from_logits)
        if name is not None and not isinstance(name, str):
            raise ValueError(f"`name` must be a string or None, got {name!r}.")
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


class OutputScore(OODScore):
    """A score that is a function of the model's outputs alone.

    Such a score can be computed inside a model (the `OODThreshold` layer,
    a serving signature) as well as from predictions.
    """

    # Scores that a softmax output cannot give (max logit, energy).
    needs_true_logits = False

    def __call__(self, model, inputs, batch_size=DEFAULT_BATCH_SIZE):
        validation.check_int("batch_size", batch_size)
        outputs = model.predict(inputs, batch_size=batch_size, verbose=0)
        return np.asarray(keras.ops.convert_to_numpy(self.score_outputs(outputs)))

    def resolved_from_logits(self, outputs):
        """`from_logits` for these concrete outputs, checked against the score."""
        from_logits = outputs_lib.resolve_from_logits(
            outputs, self.from_logits, what="the model outputs"
        )
        self.check_logits(from_logits)
        return from_logits

    def check_logits(self, from_logits):
        """Raises if the score needs logits and the outputs are probabilities."""
        if self.needs_true_logits and not from_logits:
            raise ValueError(
                f"The {self.key!r} score needs logits, but the model's outputs "
                "are probabilities. A softmax output hides the logits (only "
                "their differences survive). Score a copy of the model without "
                "its final softmax, or use the 'msp' or 'entropy' score."
            )

    def score_outputs(self, outputs, from_logits=None):
        """The score of model outputs of shape `(N, K)`, as a tensor.

        Args:
            outputs: Model outputs, concrete (then `from_logits` may be
                detected) or symbolic.
            from_logits: A resolved `bool`, needed for symbolic outputs;
                `None` resolves the scorer's own `from_logits` on `outputs`.
        """
        if from_logits is None:
            from_logits = self.resolved_from_logits(outputs)
        else:
            self.check_logits(from_logits)
        logits = outputs_lib.logits(outputs_lib.at_least_float32(outputs), from_logits)
        return self.score_logits(logits)

    def score_logits(self, logits):
        raise NotImplementedError


@register_score("msp", "max_softmax_probability")
class MaxSoftmaxProbability(OutputScore):
    """Maximum softmax probability at temperature `T`; see `max_softmax_probability`.

    Args:
        temperature: Positive temperature (1 for the plain confidence).
        from_logits: Whether the model outputs logits; `None` detects it.
        name: Report key, default `"msp"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> MaxSoftmaxProbability()(model, np.zeros((2, 4), "float32")).tolist()
    [0.3333333432674408, 0.3333333432674408]
    """

    def __init__(self, temperature=1.0, from_logits=None, name=None):
        super().__init__(from_logits=from_logits, name=name)
        self.temperature = validation.check_positive_number("temperature", temperature)

    def score_logits(self, logits):
        return max_softmax_probability(logits, temperature=self.temperature)

    def get_config(self):
        return {"temperature": self.temperature, **super().get_config()}


@register_score("max_logit")
class MaxLogit(OutputScore):
    """Maximum logit; see `max_logit`. Needs a model that outputs logits.

    Args:
        from_logits: `True`, or `None` to check it on the outputs.
        name: Report key, default `"max_logit"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> MaxLogit()(model, np.zeros((2, 4), "float32")).tolist()
    [0.0, 0.0]
    """

    needs_true_logits = True

    def score_logits(self, logits):
        return max_logit(logits)


@register_score("energy")
class Energy(OutputScore):
    """Negative energy `T * logsumexp(logits / T)`; see `energy_score`.

    Needs a model that outputs logits.

    Args:
        temperature: Positive temperature (1 in Liu et al., 2020).
        from_logits: `True`, or `None` to check it on the outputs.
        name: Report key, default `"energy"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> np.round(Energy()(model, np.zeros((1, 4), "float32")), 4)  # ln 2
    array([0.6931], dtype=float32)
    """

    needs_true_logits = True

    def __init__(self, temperature=1.0, from_logits=None, name=None):
        super().__init__(from_logits=from_logits, name=name)
        self.temperature = validation.check_positive_number("temperature", temperature)

    def score_logits(self, logits):
        return energy_score(logits, temperature=self.temperature)

    def get_config(self):
        return {"temperature": self.temperature, **super().get_config()}


@register_score("entropy", "negative_entropy")
class NegativeEntropy(OutputScore):
    """Negative predictive entropy; see `negative_entropy`.

    Works on logits and on probabilities.

    Args:
        from_logits: Whether the model outputs logits; `None` detects it.
        name: Report key, default `"entropy"`.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    >>> np.round(NegativeEntropy()(model, np.zeros((1, 4), "float32")), 4)  # -ln 2
    array([-0.6931], dtype=float32)
    """

    def score_logits(self, logits):
        return negative_entropy(logits)
