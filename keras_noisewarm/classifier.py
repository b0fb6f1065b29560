"""What the warm-up needs to know about a classifier, found before training.

`inspect_classifier` looks at a model once, with one small forward pass in
inference mode, and answers: what shape and dtype its inputs have, how many
classes it predicts, whether its outputs are probabilities or logits, and what
a label for it looks like. Every error a user can make is raised here, before
any weight changes.
"""

import dataclasses
import warnings

import keras
import numpy as np

from keras_noisewarm import noise

_PROBE_BATCH_SIZE = 8
# Probabilities from a float32 softmax sum to one within a few ulps; this is
# loose enough for float16 outputs and still far from what random logits do.
_SUM_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class ClassifierSpec:
    """How to feed a classifier noise and how to read its outputs.

    Attributes:
        input_shape: Shape of one example (a tuple), or a tuple/dict of shapes
            for a multi-input model.
        input_dtype: Floating dtype of the inputs.
        num_classes: Number of classes `K`.
        binary: `True` for a single sigmoid/logit unit standing for two
            classes.
        from_logits: Whether the outputs are logits.
        label_shape: Shape of the labels of one example without the class
            axis: `()` for a classifier, `(H, W)` for a per-pixel head, `(1,)`
            for a binary single-unit head.
    """

    input_shape: object
    input_dtype: str
    num_classes: int
    binary: bool
    from_logits: bool
    label_shape: tuple


def inspect_classifier(model, num_classes=None, input_shape=None, from_logits=None):
    """Checks that `model` is a classifier the warm-up can handle.

    Args:
        model: A Keras model.
        num_classes: Expected number of classes, or `None` to take it from the
            width of the output (a width of 1 means a binary sigmoid model).
        input_shape: Shape of one example without the batch dimension, or
            `None` to read it from `model.inputs`.
        from_logits: `True`/`False` to state what the outputs are, or `None`
            to detect it: outputs that lie in `[0, 1]` and sum to one over the
            class axis are probabilities.

    Returns:
        A `ClassifierSpec`.

    Raises:
        ValueError: with what to do, if the input shape cannot be inferred,
            the output does not match `num_classes`, the model has several
            outputs, or the outputs are not those of a classifier.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model, got {type(model).__name__}.")
    if num_classes is not None:
        noise._check_positive_int("num_classes", num_classes, minimum=2)
    if from_logits not in (None, True, False):
        raise ValueError(f"`from_logits` must be True, False or None, got {from_logits!r}.")

    if input_shape is None:
        input_shape, input_dtype = _infer_input_shape(model)
    else:
        input_shape = noise._validated_shapes(input_shape)
        input_dtype = _float_dtype_of_inputs(model)

    outputs = _probe(model, input_shape, input_dtype)
    width = outputs.shape[-1]
    binary = width == 1
    if num_classes is None:
        num_classes = 2 if binary else width
    if binary and num_classes != 2:
        raise ValueError(
            f"Model {model.name!r} has a single output unit but num_classes="
            f"{num_classes}. A one-unit (sigmoid) output can only stand for "
            "2 classes; give the model a Dense(num_classes) head."
        )
    if not binary and width != num_classes:
        raise ValueError(
            f"Model {model.name!r} outputs {width} values per example (output "
            f"shape {tuple(outputs.shape)}) but num_classes={num_classes}. "
            "The last axis of the output must hold one logit or probability "
            "per class: pass num_classes=" f"{width} or change the model's head."
        )
    from_logits = _resolve_from_logits(model, outputs, binary, from_logits)
    label_shape = tuple(outputs.shape[1:-1]) + ((1,) if binary else ())
    return ClassifierSpec(
        input_shape=input_shape,
        input_dtype=input_dtype,
        num_classes=int(num_classes),
        binary=binary,
        from_logits=from_logits,
        label_shape=label_shape,
    )


def class_probabilities(outputs, spec):
    """Turns model outputs into class probabilities with the class axis last.

    Args:
        outputs: NumPy array of model outputs.
        spec: The model's `ClassifierSpec`.

    Returns:
        A float64 NumPy array of shape `outputs.shape[:-1] + (K,)`.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    if spec.binary:
        positive = 1.0 / (1.0 + np.exp(-outputs)) if spec.from_logits else outputs
        return np.concatenate([1.0 - positive, positive], axis=-1)
    if not spec.from_logits:
        return outputs
    shifted = outputs - outputs.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _infer_input_shape(model):
    inputs = _symbolic_inputs(model)
    if inputs is None:
        raise ValueError(
            f"Cannot infer the input shape of model {model.name!r}: it has no "
            "symbolic inputs (a subclassed model, or a Sequential model built "
            "without keras.Input). Pass the shape of one example without the "
            "batch dimension, e.g. warmup(model, num_classes=10, "
            "input_shape=(32, 32, 3)), or start the model with "
            "keras.Input(shape=...)."
        )
    shapes = []
    for tensor in inputs:
        shape = tuple(tensor.shape[1:])
        if any(dim is None for dim in shape):
            raise ValueError(
                f"Model {model.name!r} has an input of shape {tuple(tensor.shape)} "
                "with an unknown dimension, so the noise shape is not defined. "
                "Pass the full shape of one example, e.g. warmup(model, "
                "num_classes=10, input_shape=(224, 224, 3))."
            )
        shapes.append(shape)
    dtypes = {keras.backend.standardize_dtype(tensor.dtype) for tensor in inputs}
    return (shapes[0] if len(shapes) == 1 else tuple(shapes)), _single_float_dtype(
        model, dtypes
    )


def _symbolic_inputs(model):
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def _float_dtype_of_inputs(model):
    inputs = _symbolic_inputs(model)
    if inputs is None:
        return "float32"
    dtypes = {keras.backend.standardize_dtype(tensor.dtype) for tensor in inputs}
    return _single_float_dtype(model, dtypes)


def _single_float_dtype(model, dtypes):
    non_float = sorted(d for d in dtypes if "float" not in d)
    if non_float:
        raise ValueError(
            f"Model {model.name!r} has inputs of dtype {non_float}. Gaussian or "
            "uniform noise only makes sense for floating inputs; for token ids "
            "warm up the layers after the embedding instead."
        )
    return sorted(dtypes)[0]


def _probe(model, input_shape, input_dtype):
    """One forward pass in inference mode on a few noise examples."""
    rng = np.random.default_rng(0)

    def sample(shape):
        return keras.ops.convert_to_tensor(
            rng.standard_normal((_PROBE_BATCH_SIZE,) + shape).astype(input_dtype)
        )

    if isinstance(input_shape, dict):
        probe = {name: sample(shape) for name, shape in input_shape.items()}
    elif isinstance(input_shape[0], tuple):
        probe = tuple(sample(shape) for shape in input_shape)
    else:
        probe = sample(input_shape)
    try:
        outputs = model(probe, training=False)
    except Exception as error:
        raise ValueError(
            f"Model {model.name!r} could not be called on noise of shape "
            f"{input_shape} (batch dimension excluded): {error}. If the shape "
            "is wrong, pass input_shape=... explicitly."
        ) from error
    if isinstance(outputs, (list, tuple, dict)):
        raise ValueError(
            f"Model {model.name!r} has {len(outputs)} outputs. The warm-up needs "
            "a single classification output; build a model that returns only "
            "the classifier head, e.g. keras.Model(model.inputs, "
            "model.outputs[0]), and warm that up (it shares the weights)."
        )
    dtype = keras.backend.standardize_dtype(outputs.dtype)
    outputs = keras.ops.convert_to_numpy(outputs)
    if "float" not in dtype or outputs.ndim < 2:
        raise ValueError(
            f"Model {model.name!r} returns outputs of shape {outputs.shape} and "
            f"dtype {dtype}; a classifier returns floating logits or "
            "probabilities of shape (batch, ..., num_classes)."
        )
    if not np.all(np.isfinite(outputs)):
        raise ValueError(
            f"Model {model.name!r} returns NaN or Inf on Gaussian noise; check "
            "its initialisation before warming it up."
        )
    return outputs


def _resolve_from_logits(model, outputs, binary, from_logits):
    in_unit_interval = bool(np.all(outputs >= 0.0) and np.all(outputs <= 1.0))
    if binary:
        looks_like_probabilities = in_unit_interval and _ends_in_activation(
            model, "sigmoid"
        )
    else:
        sums_to_one = np.allclose(outputs.sum(axis=-1), 1.0, atol=_SUM_TOLERANCE)
        looks_like_probabilities = in_unit_interval and sums_to_one
    if from_logits is None:
        if binary and in_unit_interval and not looks_like_probabilities:
            raise ValueError(
                f"Cannot tell whether the single output of model {model.name!r} "
                "is a probability or a logit: its values lie in [0, 1] but it "
                "does not end in a sigmoid. Pass from_logits=True or "
                "from_logits=False."
            )
        return not looks_like_probabilities
    if from_logits is False and not looks_like_probabilities:
        what = "lie in [0, 1]" if binary else "lie in [0, 1] and sum to one"
        raise ValueError(
            f"from_logits=False, but the outputs of model {model.name!r} do not "
            f"{what}, so they are not probabilities. Use from_logits=True (or "
            "leave from_logits=None to detect it)."
        )
    if from_logits is True and looks_like_probabilities:
        warnings.warn(
            f"from_logits=True, but the outputs of model {model.name!r} look "
            "like probabilities (they lie in [0, 1] and sum to one). The "
            "warm-up will treat them as logits, as asked.",
            stacklevel=3,
        )
    return from_logits


def _ends_in_activation(model, name):
    layer = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) == name
