"""What a model's outputs are, and what the warm-up trains each of them towards.

The warm-up pairs noise inputs with targets that carry no information, so
that the best a model can do is predict its uninformative prior everywhere:

- `Classification`: uniform random class ids; a softmax head is pulled to
  `1/K` per class. Extra output axes make it per-pixel (segmentation,
  `(H, W, K)` outputs) or per-position (sequence and language models,
  `(L, V)` outputs).
- `Binary` (one sigmoid) and `MultiLabel` (`K` independent sigmoids):
  Bernoulli targets of a given prior (0.5 by default); the sigmoids are
  pulled to that prior.
- `Regression`: Gaussian targets of a given mean and scale; a mean head is
  pulled to the mean, and a head that predicts a variance too (trained with
  its own likelihood loss) to the mean and the variance.

`infer_task` finds the task of one output from what the model shows: the
activation of its last layer, the width and values of its output, and the
loss it was compiled with. Where these leave it open (a linear output of one
unit, say, which could be a binary logit or a regression), it asks for
`task=` instead of guessing.
"""

import keras
import numpy as np

from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation

_CLASSIFICATION_LOSSES = {
    "sparse_categorical_crossentropy": False,
    "sparsecategoricalcrossentropy": False,
    "categorical_crossentropy": True,
    "categoricalcrossentropy": True,
    "categorical_focal_crossentropy": True,
    "categoricalfocalcrossentropy": True,
}
_BINARY_LOSSES = (
    "binary_crossentropy",
    "binarycrossentropy",
    "binary_focal_crossentropy",
    "binaryfocalcrossentropy",
)
_REGRESSION_LOSSES = (
    "mean_squared_error",
    "meansquarederror",
    "mse",
    "mean_absolute_error",
    "meanabsoluteerror",
    "mae",
    "huber",
    "huber_loss",
    "log_cosh",
    "logcosh",
    "mean_squared_logarithmic_error",
    "meansquaredlogarithmicerror",
)


class Task:
    """Base of the task types: the warm-up targets and loss of one output.

    Attributes:
        from_logits: Whether the output holds logits (classification tasks).
    """

    name = None

    def target_shape(self, output_shape):
        """Shape of one example's target for an output of `output_shape`."""
        raise NotImplementedError

    def stream_targets(self, shape, seed):
        """Targets of `shape` (batch included) inside `tf.data`, from a stateless seed."""
        raise NotImplementedError

    def loss(self):
        """The warm-up loss of this output."""
        raise NotImplementedError

    def check_output(self, output_shape, model_name):
        """Raises if an output of `output_shape` does not fit the task."""

    def prior_gap(self, outputs):
        """How far outputs on noise are from the uninformative prior, in `[0, 1]`-ish units.

        0 means at the prior; the warm-up drives it down. See each task.

        Args:
            outputs: NumPy outputs of the model on noise, batch first.
        """
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({arguments})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash(type(self).__name__)


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class Classification(Task):
    """One class out of `K` per example (or per pixel, or per position).

    Targets are class ids drawn uniformly from `[0, K)`, one per prediction:
    the uninformative prior is `1/K` for every class.

    Args:
        num_classes: `K`, at least 2.
        from_logits: Whether the output holds logits; `None` until detected.
        one_hot: Whether the targets are one-hot vectors (for a model
            trained with categorical rather than sparse cross-entropy).

    Example:

    >>> Classification(10).target_shape((32, 32, 10))
    (32, 32)
    """

    name = "classification"

    def __init__(self, num_classes, from_logits=None, one_hot=False):
        self.num_classes = validation.check_int("num_classes", num_classes, minimum=2)
        self.from_logits = validation.check_from_logits(from_logits)
        self.one_hot = validation.check_bool("one_hot", one_hot)

    def target_shape(self, output_shape):
        if self.one_hot:
            return tuple(output_shape)
        return tuple(output_shape[:-1])

    def check_output(self, output_shape, model_name):
        if output_shape[-1] != self.num_classes:
            raise ValueError(
                f"Model {model_name!r} outputs {output_shape[-1]} values per "
                f"prediction (output shape {tuple(output_shape)}) but "
                f"num_classes={self.num_classes}. The last axis of the output must "
                "hold one logit or probability per class: pass "
                f"num_classes={output_shape[-1]} or change the model's head."
            )

    def stream_targets(self, shape, seed):
        import tensorflow as tf

        label_shape = shape[:-1] if self.one_hot else shape
        labels = tf.random.stateless_uniform(
            label_shape, seed=seed, minval=0, maxval=self.num_classes, dtype=tf.int32
        )
        if self.one_hot:
            return tf.one_hot(labels, self.num_classes, dtype=tf.float32)
        return labels

    def loss(self):
        if self.one_hot:
            return keras.losses.CategoricalCrossentropy(from_logits=self.from_logits)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=self.from_logits)

    def prior_gap(self, outputs):
        """The excess of the mean top-class confidence, or of the most predicted
        class's share, over chance (`1/K`), whichever is larger, over `1 - 1/K`."""
        probabilities = outputs_lib.probabilities_of(outputs, self.from_logits)
        probabilities = probabilities.reshape(-1, probabilities.shape[-1])
        chance = 1.0 / self.num_classes
        confidence = float(probabilities.max(axis=-1).mean())
        shares = np.bincount(probabilities.argmax(axis=-1), minlength=self.num_classes)
        largest_share = float(shares.max() / len(probabilities))
        return max(confidence - chance, largest_share - chance) / (1.0 - chance)

    def get_config(self):
        return {"num_classes": self.num_classes, "from_logits": self.from_logits, "one_hot": self.one_hot}


class _Bernoulli(Task):
    """Targets that are 1 with probability `prior` (one value or one per label)."""

    def __init__(self, prior=0.5, from_logits=None):
        self.prior = _prior(prior)
        self.from_logits = validation.check_from_logits(from_logits)

    def target_shape(self, output_shape):
        return tuple(output_shape)

    def check_output(self, output_shape, model_name):
        if isinstance(self.prior, tuple) and len(self.prior) != output_shape[-1]:
            raise ValueError(
                f"{len(self.prior)} label priors for an output of {output_shape[-1]} "
                f"sigmoids in model {model_name!r}."
            )

    def stream_targets(self, shape, seed):
        import tensorflow as tf

        prior = tf.constant(np.asarray(self.prior, "float32"))
        uniform = tf.random.stateless_uniform(shape, seed=seed, dtype=tf.float32)
        return tf.cast(uniform < prior, tf.float32)

    def loss(self):
        return keras.losses.BinaryCrossentropy(from_logits=self.from_logits)

    def prior_gap(self, outputs):
        """The mean distance of the sigmoids from their prior, over its largest value."""
        outputs = np.asarray(outputs, dtype=np.float64)
        probabilities = 1.0 / (1.0 + np.exp(-outputs)) if self.from_logits else outputs
        prior = np.asarray(self.prior, dtype=np.float64)
        largest = np.maximum(prior, 1.0 - prior)
        return float(np.mean(np.abs(probabilities - prior) / largest))

    def get_config(self):
        prior = list(self.prior) if isinstance(self.prior, tuple) else self.prior
        return {"prior": prior, "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class Binary(_Bernoulli):
    """A single sigmoid (or logit) unit: is the example positive?

    Targets are 1 with probability `prior` (0.5 by default): the sigmoid is
    pulled to the prior on noise.

    Args:
        prior: Probability of a positive target, in `(0, 1)`; use the
            training data's positive rate to warm up to it.
        from_logits: Whether the unit outputs a logit; `None` until detected.

    Example:

    >>> Binary(prior=0.2).loss().get_config()["name"]
    'binary_crossentropy'
    """

    name = "binary"

    def check_output(self, output_shape, model_name):
        if output_shape[-1] != 1:
            raise ValueError(
                f"A binary task needs one output unit; model {model_name!r} "
                f"outputs {output_shape[-1]} values per prediction. For several "
                "independent labels use MultiLabel."
            )


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class MultiLabel(_Bernoulli):
    """`K` independent sigmoids: which of `K` labels apply to the example.

    Targets are independent Bernoulli draws of the label priors (0.5 by
    default, or one prior per label): every sigmoid is pulled to its prior.

    Args:
        num_labels: `K`.
        prior: A probability in `(0, 1)`, or one per label (the training
            labels' frequencies).
        from_logits: Whether the output holds logits; `None` until detected.

    Example:

    >>> MultiLabel(5).target_shape((5,))
    (5,)
    """

    name = "multi_label"

    def __init__(self, num_labels, prior=0.5, from_logits=None):
        super().__init__(prior=prior, from_logits=from_logits)
        self.num_labels = validation.check_int("num_labels", num_labels, minimum=1)

    def check_output(self, output_shape, model_name):
        if output_shape[-1] != self.num_labels:
            raise ValueError(
                f"MultiLabel({self.num_labels}) for model {model_name!r}, whose "
                f"output has {output_shape[-1]} values per prediction."
            )
        super().check_output(output_shape, model_name)

    def get_config(self):
        return {"num_labels": self.num_labels, **super().get_config()}


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class Regression(Task):
    """Real-valued targets: predictions are pulled to the prior mean.

    Targets are Gaussian with the training targets' mean and standard
    deviation (one value, or one per output column), so the best constant
    prediction is the mean and, for a head that also predicts a variance
    (trained with its own likelihood loss), the variance. The default loss
    is the mean squared error; a model compiled with another loss (a
    Gaussian negative log-likelihood for a mean-and-variance head, a
    quantile loss) is warmed up with that loss.

    Args:
        mean: Mean of the targets (a number or one per column).
        std: Standard deviation of the targets (positive).
        target_shape: Shape of one example's target when it differs from
            the output's (a mean-and-variance head outputs 2 values per
            target); `None` for the output's shape.
        loss: The warm-up loss; `None` for the model's compiled loss, else
            mean squared error.

    Example:

    >>> Regression(mean=3.0, std=2.0).target_shape((1,))
    (1,)
    """

    name = "regression"
    from_logits = None

    def __init__(self, mean=0.0, std=1.0, target_shape=None, loss=None):
        self.mean = _moment("mean", mean)
        self.std = _moment("std", std, positive=True)
        self.shape = None if target_shape is None else tuple(int(d) for d in target_shape)
        self.loss_function = loss

    @classmethod
    def from_targets(cls, targets, target_shape=None, loss=None):
        """A regression task with the mean and scale of training targets.

        Args:
            targets: Array of training targets, `(N,)` or `(N, D)`.
            target_shape: As in the constructor.
            loss: As in the constructor.
        """
        values = np.asarray(targets, dtype=np.float64)
        if values.size == 0 or not np.all(np.isfinite(values)):
            raise ValueError("The training targets must be finite and not empty.")
        if values.ndim == 1:
            values = values[:, None]
        flat = values.reshape(-1, values.shape[-1])
        mean, std = flat.mean(axis=0), np.maximum(flat.std(axis=0), 1e-12)
        if mean.size == 1:
            mean, std = float(mean[0]), float(std[0])
        else:
            mean, std = tuple(mean.tolist()), tuple(std.tolist())
        return cls(mean=mean, std=std, target_shape=target_shape, loss=loss)

    def target_shape(self, output_shape):
        return self.shape if self.shape is not None else tuple(output_shape)

    def stream_targets(self, shape, seed):
        import tensorflow as tf

        from keras_noisewarm.noise.base import stream_standard_normal

        standard = stream_standard_normal(shape, seed, "float32")
        mean = tf.constant(np.asarray(self.mean, "float32"))
        std = tf.constant(np.asarray(self.std, "float32"))
        return mean + std * standard

    def loss(self):
        if self.loss_function is not None:
            return keras.losses.get(self.loss_function)
        return keras.losses.MeanSquaredError()

    def prior_gap(self, outputs):
        """The root-mean-square distance of the predictions from the prior mean, in
        target standard deviations (a mean-and-variance head: its first half)."""
        outputs = np.asarray(outputs, dtype=np.float64)
        target_width = self.shape[-1] if self.shape is not None else outputs.shape[-1]
        predictions = outputs[..., :target_width]
        mean = np.asarray(self.mean, dtype=np.float64)
        std = np.asarray(self.std, dtype=np.float64)
        return float(np.sqrt(np.mean(((predictions - mean) / std) ** 2)))

    def get_config(self):
        def listed(value):
            return list(value) if isinstance(value, tuple) else value

        loss = self.loss_function
        if loss is not None and not isinstance(loss, str):
            loss = keras.saving.serialize_keras_object(loss)
        return {
            "mean": listed(self.mean),
            "std": listed(self.std),
            "target_shape": None if self.shape is None else list(self.shape),
            "loss": loss,
        }


TASKS = {
    "classification": Classification,
    "binary": Binary,
    "multi_label": MultiLabel,
    "regression": Regression,
}


def infer_task(output_shape, probe, layer_activation, compiled_loss, num_classes,
               task, from_logits, model_name):
    """The task of one model output, from what the model shows.

    Args:
        output_shape: Shape of one example's output (without batch).
        probe: NumPy outputs of a forward pass on a few noise examples, in
            the model's output dtype.
        layer_activation: Name of the activation of the layer producing the
            output (`"softmax"`, `"sigmoid"`, `"linear"`, ...), or `None`.
        compiled_loss: The loss this output was compiled with, or `None`.
        num_classes: The user's `num_classes`, or `None`.
        task: The user's task: `None`, a name of `TASKS`, or a `Task`.
        from_logits: The user's `from_logits` (`None` to detect).
        model_name: For messages.

    Returns:
        A `Task` with `from_logits` resolved where it applies.

    Raises:
        ValueError: When the output does not fit the task asked for, or the
            task cannot be inferred (with what to pass).
    """
    width = output_shape[-1]
    loss_kind, loss_one_hot, loss_from_logits = _loss_kind(compiled_loss)
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"Unknown task {task!r}: expected one of {sorted(TASKS)} or a Task.")
        task = _task_from_name(task, width, num_classes, loss_one_hot, compiled_loss)
    if task is None:
        task = _guessed_task(width, probe, layer_activation, loss_kind, loss_one_hot,
                             num_classes, model_name, compiled_loss)
    if not isinstance(task, Task):
        raise ValueError(f"`task` must be a task name or a keras_noisewarm.tasks.Task, got {task!r}.")
    task.check_output(output_shape, model_name)
    if isinstance(task, Regression):
        if task.loss_function is None and compiled_loss is not None and loss_kind != "regression":
            task = Regression(task.mean, task.std, task.shape, loss=compiled_loss)
        return task
    if num_classes is not None and isinstance(task, Classification) and num_classes != task.num_classes:
        raise ValueError(f"num_classes={num_classes} but the task has {task.num_classes} classes.")
    stated = task.from_logits if task.from_logits is not None else from_logits
    if stated is None and loss_from_logits is not None and layer_activation in (None, "linear"):
        stated = loss_from_logits
    task.from_logits = _resolved_from_logits(task, probe, layer_activation, stated, model_name)
    return task


def _task_from_name(name, width, num_classes, one_hot, compiled_loss):
    if name == "classification":
        return Classification(num_classes or width, one_hot=bool(one_hot))
    if name == "binary":
        return Binary()
    if name == "multi_label":
        return MultiLabel(width)
    return Regression()


def _guessed_task(width, probe, activation, loss_kind, loss_one_hot, num_classes,
                  model_name, compiled_loss):
    if activation == "softmax" or loss_kind == "classification":
        if width < 2:
            raise ValueError(
                f"Model {model_name!r} has a softmax (or is compiled with a "
                "categorical loss) over a single unit, which is constant."
            )
        return Classification(num_classes or width, one_hot=bool(loss_one_hot))
    if loss_kind == "regression":
        if num_classes is not None:
            raise ValueError(
                f"num_classes={num_classes}, but model {model_name!r} is compiled "
                "with a regression loss. Leave num_classes out to warm it up as a "
                "regression (task='regression'), or compile it as a classifier."
            )
        return Regression()
    if activation == "sigmoid" or loss_kind == "binary":
        if width == 1:
            if num_classes not in (None, 2):
                raise _single_unit_error(model_name, num_classes)
            return Binary()
        if num_classes is not None and activation == "sigmoid":
            raise ValueError(
                f"Model {model_name!r} ends in {width} independent sigmoids, a "
                f"multi-label output, not a {num_classes}-class softmax. Leave "
                "num_classes out (or pass task='multi_label') to warm it up to "
                "its label priors, or give it a softmax head."
            )
        return MultiLabel(width)
    if width == 1:
        if num_classes not in (None, 2):
            raise _single_unit_error(model_name, num_classes)
        if num_classes == 2 or _in_unit_interval(probe):
            return Binary()
        raise ValueError(
            f"Model {model_name!r} has one linear output unit: a binary logit or "
            "a regression? Compile it with its loss (binary cross-entropy, mean "
            "squared error, ...) or pass task='binary' or "
            "task=keras_noisewarm.tasks.Regression(mean, std)."
        )
    if compiled_loss is not None and loss_kind is None and num_classes is None:
        raise ValueError(
            f"Cannot tell what model {model_name!r} predicts from its compiled "
            f"loss {compiled_loss!r}. Pass task= (for instance "
            "task='classification', or keras_noisewarm.tasks.Regression(mean, "
            "std)) or num_classes= for a classifier."
        )
    return Classification(num_classes or width)


def _single_unit_error(model_name, num_classes):
    return ValueError(
        f"Model {model_name!r} has a single output unit but num_classes="
        f"{num_classes}. A one-unit (sigmoid) output can only stand for 2 "
        "classes; give the model a Dense(num_classes) head."
    )


def _resolved_from_logits(task, probe, activation, from_logits, model_name):
    in_unit_interval = _in_unit_interval(probe)
    if isinstance(task, (Binary, MultiLabel)):
        # Sigmoid outputs cannot be told from small logits by their values:
        # the last layer's activation decides.
        looks_like_probabilities = in_unit_interval and activation == "sigmoid"
        if from_logits is None:
            if in_unit_interval and not looks_like_probabilities:
                raise ValueError(
                    f"Cannot tell whether the outputs of model {model_name!r} are "
                    "probabilities or logits: their values lie in [0, 1] but the "
                    "model does not end in a sigmoid. Pass from_logits=True or "
                    "from_logits=False."
                )
            return not looks_like_probabilities
        if from_logits is False and not in_unit_interval:
            raise ValueError(
                f"from_logits=False, but the outputs of model {model_name!r} do "
                "not lie in [0, 1], so they are not probabilities. Use "
                "from_logits=True (or leave from_logits=None to detect it)."
            )
        return from_logits
    flat = probe.reshape(-1, probe.shape[-1])
    try:
        return outputs_lib.resolve_from_logits(
            flat, from_logits, what=f"the outputs of model {model_name!r}"
        )
    except ValueError as error:
        if from_logits is None:
            raise ValueError(
                f"{error} If model {model_name!r} is a multi-label model, pass "
                "task='multi_label'."
            ) from None
        raise


def _in_unit_interval(probe):
    return bool(np.all(probe >= 0.0) and np.all(probe <= 1.0))


def _loss_kind(loss):
    """`(kind, one_hot, from_logits)` of a compiled loss, `None`s when unknown."""
    if loss is None:
        return None, None, None
    name, from_logits = _loss_name(loss)
    if name in _CLASSIFICATION_LOSSES:
        return "classification", _CLASSIFICATION_LOSSES[name], from_logits
    if name in _BINARY_LOSSES:
        return "binary", None, from_logits
    if name in _REGRESSION_LOSSES:
        return "regression", None, None
    return None, None, None


def _loss_name(loss):
    if isinstance(loss, str):
        return loss.lower(), False
    if isinstance(loss, keras.losses.Loss):
        config = loss.get_config()
        name = type(loss).__name__.lower()
        if name == "lossfunctionwrapper":
            name = str(config.get("name", "")).lower()
        return name, config.get("from_logits", False)
    name = getattr(loss, "__name__", "")
    return name.lower(), False


def _prior(value):
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(validation.check_fraction("prior", float(v)) for v in np.ravel(value))
    return validation.check_fraction("prior", value)


def _moment(name, value, positive=False):
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_moment(name, float(v), positive) for v in np.ravel(value))
    if positive:
        return validation.check_positive_number(name, value)
    return validation.check_number(name, value)
