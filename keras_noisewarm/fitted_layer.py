"""The base of every layer fitted on held-out model outputs.

Post-hoc calibration (temperature, vector scaling), the OOD threshold and
conformal prediction sets are all Keras layers appended to a trained
classifier whose few numbers are fitted once on held-out outputs, on the
host, then kept as non-trainable weights so that `.keras` files and exported
SavedModels carry them. `FittedOutputLayer` holds what they share: resolving
`from_logits` from the held-out outputs (the package's rule, see
`keras_noisewarm.outputs`), building the weights, assigning the fitted
values, and knowing whether the layer has been fitted.

They compute in float32 under the mixed-precision policies (in their
variables' dtype, whatever the global policy): a float32 head stays float32
through them, a float16 or bfloat16 one is widened exactly, and `fit`
computes its scores in the dtype the layer later compares them in, so that
a prediction set or an OOD flag never changes with the rounding of a
threshold.
"""

import keras
import numpy as np

from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import validation
from keras_noisewarm.backend.compilation import values_are_concrete


class FittedOutputLayer(keras.layers.Layer):
    """A layer on model outputs with weights fitted on a held-out set.

    Subclasses say which weights they hold (`fitted_weights`), how to compute
    them from held-out outputs (`fitted_values`), and what the layer does
    with them (`transform`). `fit` does the rest: it reads the held-out
    outputs, resolves `from_logits` from them when it is `None` (and keeps the
    answer, so that a saved layer reads its inputs as it was fitted), builds
    the layer, assigns the values and marks it fitted. The mark is a weight
    of its own, `fitted`, so a reloaded layer knows it too.

    Args:
        from_logits: Whether the layer's inputs are logits, probabilities
            (`False`), or `None` to detect it from the outputs given to
            `fit`.
        **kwargs: Standard `keras.layers.Layer` arguments (`name`, `dtype`).
            Without a `dtype`, the layer computes in the variable dtype of
            the global policy (float32 under `"mixed_float16"` and
            `"mixed_bfloat16"`).
    """

    def __init__(self, from_logits=None, **kwargs):
        if kwargs.get("dtype") is None:
            kwargs["dtype"] = keras.config.dtype_policy().variable_dtype
        # The inputs are cast in `call`, after `from_logits` has been judged
        # on their own dtype (see `keras_noisewarm.outputs`).
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.from_logits = validation.check_from_logits(from_logits)

    def fitted_weights(self, input_shape):
        """The weights to hold: `{name: (shape, initial value)}`."""
        raise NotImplementedError

    def fitted_values(self, outputs, labels):
        """The fitted values from held-out NumPy outputs: `{name: value}`.

        `self.from_logits` is resolved (a bool) when this is called.
        """
        raise NotImplementedError

    def transform(self, inputs):
        """What the layer computes from its inputs (`self.from_logits` known)."""
        raise NotImplementedError

    def initially_fitted(self):
        """Whether the weights' initial values are already meant to be used."""
        return False

    def build(self, input_shape):
        for name, (shape, initial) in self.fitted_weights(input_shape).items():
            weight = self.add_weight(
                name=name,
                shape=shape,
                initializer=keras.initializers.Constant(initial),
                trainable=False,
            )
            setattr(self, name, weight)
        self.fitted = self.add_weight(
            name="fitted",
            shape=(),
            initializer=keras.initializers.Constant(float(self.initially_fitted())),
            trainable=False,
        )

    @property
    def is_fitted(self):
        """Whether the layer holds fitted (or deliberately given) values."""
        if not self.built:
            return self.initially_fitted()
        return bool(keras.ops.convert_to_numpy(self.fitted) > 0)

    def fit(self, outputs, labels=None):
        """Fits the layer on held-out model outputs.

        Args:
            outputs: Model outputs on held-out inputs the model was not
                trained on, shape `(N, K)`.
            labels: Their labels, for layers that need them.

        Returns:
            The layer itself, fitted.
        """
        outputs = np.asarray(keras.ops.convert_to_numpy(outputs))
        if outputs.ndim != 2 or outputs.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__}.fit needs held-out model outputs of shape "
                f"(num_examples, num_classes) with at least one example, got "
                f"shape {outputs.shape}."
            )
        if not np.all(np.isfinite(outputs)):
            raise ValueError("The held-out model outputs contain NaN or Inf.")
        self.from_logits = outputs_lib.resolve_from_logits(
            outputs, self.from_logits, what="the held-out outputs"
        )
        values = self.fitted_values(outputs.astype(self.compute_dtype), labels)
        if not self.built:
            self.build(outputs.shape)
        for name, value in values.items():
            weight = getattr(self, name)
            value = np.asarray(value)
            if tuple(weight.shape) != value.shape:
                raise ValueError(
                    f"{type(self).__name__} was built for inputs of shape "
                    f"{tuple(weight.shape)} in `{name}`, but the outputs to fit "
                    f"give {value.shape}."
                )
            weight.assign(value)
        self.fitted.assign(1.0)
        return self

    def call(self, inputs):
        if self.from_logits is not None:
            return self.transform(self._cast(inputs))
        if not values_are_concrete(inputs):
            raise ValueError(
                f"{type(self).__name__} does not know whether its inputs are logits "
                "or probabilities: fit it first (which detects it and keeps the "
                "answer), or pass from_logits=True or False."
            )
        # Not fitted and not told: this call's values decide, as the rule says.
        self.from_logits = outputs_lib.resolve_from_logits(inputs, None, what="the inputs")
        try:
            return self.transform(self._cast(inputs))
        finally:
            self.from_logits = None

    def _cast(self, inputs):
        inputs = keras.ops.convert_to_tensor(inputs)
        if "float" in keras.backend.standardize_dtype(inputs.dtype):
            inputs = keras.ops.cast(inputs, self.compute_dtype)
        return inputs

    def get_config(self):
        config = super().get_config()
        config["from_logits"] = self.from_logits
        return config


def class_labels(labels, num_examples, num_classes):
    """Integer class ids of shape `(N,)` from integer or one-hot labels.

    Args:
        labels: Integer ids `(N,)` or `(N, 1)`, or one-hot rows `(N, K)`.
        num_examples: The number of examples `N` they must cover.
        num_classes: The number of classes `K`.

    Returns:
        An int64 NumPy array of shape `(N,)`.

    Raises:
        ValueError: On a wrong shape, a non-integer or an out-of-range label.

    Example:

    >>> class_labels([[0, 1], [1, 0]], num_examples=2, num_classes=2).tolist()
    [1, 0]
    """
    if labels is None:
        raise ValueError("Labels are needed: pass the held-out examples' class ids.")
    labels = np.asarray(keras.ops.convert_to_numpy(labels))
    if labels.ndim == 2 and labels.shape[1] == num_classes and num_classes > 1:
        labels = labels.argmax(axis=1)
    elif labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (num_examples,):
        raise ValueError(
            f"Expected {num_examples} labels (integer class ids, or one-hot "
            f"rows of width {num_classes}), got an array of shape {labels.shape}."
        )
    if not np.all(np.equal(np.mod(labels, 1), 0)):
        raise ValueError("Labels must be integer class ids.")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"Labels must lie in [0, {num_classes}), got values from "
            f"{labels.min()} to {labels.max()}."
        )
    return labels
