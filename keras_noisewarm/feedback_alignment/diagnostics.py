"""How a feedback-alignment network aligns: angles and effective ranks.

- `weight_feedback_angles`: the angle between each layer's forward weights
  `W` and its feedback matrix `B`. Near 90 degrees at random
  initialisation; it falls as the forward weights align with `B`, which is
  what lets feedback alignment learn.
- `update_angles`: the angle between the update feedback alignment makes
  to each weight matrix on a batch and the true backpropagation gradient
  of the same weights. Below 90 degrees, the FA update still descends the
  loss.
- `effective_rank`: the entropy-based effective rank of a matrix (Roy &
  Vetterli, 2007); `weight_effective_ranks` gives it for every layer.

All return plain Python floats (or dicts of them, keyed by layer name),
ready for logs and reports.
"""

import keras
import numpy as np
from keras import ops

from keras_noisewarm import backend
from keras_noisewarm.feedback_alignment.convolutional import FeedbackAlignmentConv2D
from keras_noisewarm.feedback_alignment.dense import FeedbackAlignmentDense

# The layers that send their error back through a feedback matrix.
FEEDBACK_LAYERS = (FeedbackAlignmentDense, FeedbackAlignmentConv2D)


def model_layers(model):
    """The layers of `model` in order, nested models walked through."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            layers += model_layers(layer)
        else:
            layers.append(layer)
    return layers


def feedback_layers(model):
    """The feedback-alignment layers of `model` (`FEEDBACK_LAYERS`), in order."""
    return [layer for layer in model_layers(model) if isinstance(layer, FEEDBACK_LAYERS)]


def kernel_layers(model):
    """The layers of `model` that have a trainable weight matrix `kernel`."""
    trainable = {id(variable) for variable in model.trainable_variables}
    return [
        layer for layer in model_layers(model)
        if isinstance(getattr(layer, "kernel", None), keras.Variable)
        and id(layer.kernel) in trainable and len(layer.kernel.shape) >= 2
    ]


def angle_between(first, second):
    """The angle in degrees between two arrays, read as flat vectors.

    Args:
        first: Array or tensor.
        second: Array or tensor with the same number of elements.

    Returns:
        A float in [0, 180]; NaN if either array is all zeros.

    Example:

    >>> angle_between([1.0, 0.0], [1.0, 1.0])
    45.0
    """
    first = np.asarray(ops.convert_to_numpy(first), np.float64).reshape(-1)
    second = np.asarray(ops.convert_to_numpy(second), np.float64).reshape(-1)
    if first.shape != second.shape:
        raise ValueError(f"Cannot compare arrays of {first.size} and {second.size} elements.")
    norms = np.linalg.norm(first) * np.linalg.norm(second)
    if norms == 0:
        return float("nan")
    cosine = np.clip(np.dot(first, second) / norms, -1.0, 1.0)
    return float(np.round(np.degrees(np.arccos(cosine)), 10))


def weight_feedback_angles(model):
    """The angle between each feedback layer's kernel `W` and its feedback `B`.

    Args:
        model: A model with feedback-alignment layers (built).

    Returns:
        `{layer name: degrees}`, in layer order. A layer that reads the
        model's inputs with no trainable layer before it sends its error
        nowhere, so its angle says nothing about learning (see
        `feedback_is_used`).

    Example:

    >>> from keras_noisewarm.feedback_alignment import FeedbackAlignmentDense
    >>> layer = FeedbackAlignmentDense(2, name="fa")
    >>> model = keras.Sequential([keras.Input((2,)), layer])
    >>> _ = layer.feedback.assign(layer.kernel.numpy())
    >>> {name: round(angle, 3) for name, angle in weight_feedback_angles(model).items()}
    {'fa': 0.0}
    """
    layers = _named(feedback_layers(model), model)
    return {name: angle_between(layer.kernel, layer.feedback) for name, layer in layers.items()}


def feedback_is_used(model):
    """Whether each feedback layer's error reaches a trainable layer.

    A feedback layer's matrix `B` carries the error to the layers before
    it; the first layer of an MLP has none, so its `B` is never used. Layer
    order is `model.layers` order (nested models walked through), which for
    Sequential and chain-like functional models is the order of the
    computation.

    Returns:
        `{layer name: bool}` for the feedback layers of `model`.
    """
    used, trainable_before = {}, False
    for layer in model_layers(model):
        if isinstance(layer, FEEDBACK_LAYERS):
            used[layer.name] = trainable_before
        trainable_before = trainable_before or bool(layer.trainable_weights)
    return used


def effective_rank(matrix):
    """Entropy-based effective rank of a matrix (Roy & Vetterli, 2007).

    With `s` the singular values and `p = s / sum(s)`, the effective rank
    is `exp(-sum(p * log p))`: between 1 (rank one) and the smaller side of
    the matrix (all singular values equal). A kernel of more than two axes
    (a convolution's) is read as `(prod(shape[:-1]), shape[-1])`.

    Args:
        matrix: A 2-D (or higher) array, tensor or variable, not all zeros.

    Returns:
        A float.

    Example:

    >>> import numpy as np
    >>> round(effective_rank(np.eye(3)), 6), round(effective_rank(np.ones((3, 4))), 6)
    (3.0, 1.0)
    """
    matrix = np.asarray(ops.convert_to_numpy(matrix), np.float64)
    if matrix.ndim < 2:
        raise ValueError(f"The effective rank needs a matrix, got shape {matrix.shape}.")
    singular_values = np.linalg.svd(matrix.reshape(-1, matrix.shape[-1]), compute_uv=False)
    total = singular_values.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("The effective rank of a zero (or non-finite) matrix is undefined.")
    shares = singular_values[singular_values > 0] / total
    return float(np.exp(-np.sum(shares * np.log(shares))))


def weight_effective_ranks(model):
    """`effective_rank` of the kernel of every layer that has one.

    Works for any model: `Dense`, `FeedbackAlignmentDense`, convolutions.

    Returns:
        `{layer name: effective rank}`, in layer order.
    """
    layers = _named(kernel_layers(model), model)
    return {name: effective_rank(layer.kernel) for name, layer in layers.items()}


def update_angles(model, x, y, loss=None, training=True):
    """Angle between the feedback-alignment update and the true gradient.

    On the batch `(x, y)`, the gradient of the loss with respect to each
    kernel is computed twice with the same weights: through the model's
    feedback matrices (what feedback alignment trains with), and with each
    feedback matrix replaced by its layer's kernel, which is exactly
    backpropagation. Nothing in the model changes (the passes are
    stateless: BatchNorm statistics are not updated). Regularization losses
    are left out.

    Args:
        model: A built single-output model with feedback-alignment
            layers (`FeedbackAlignmentDense`, `FeedbackAlignmentConv2D`).
        x: A batch of inputs (array or tensor).
        y: Their targets.
        loss: A Keras loss (name, instance or callable `loss(y_true,
            y_pred)`); default: the model's compiled loss.
        training: Whether the passes run in training mode (batch statistics
            in BatchNorm, as in a training step). Leave it `True` for the
            update `fit` would make; a model with dropout then draws
            different masks in the two passes, so give `False` there.

    Returns:
        `{layer name: degrees}` for every layer with a trainable kernel.
        A layer after the last feedback layer gets exactly the true
        gradient (0 degrees); an all-zero gradient gives NaN.
    """
    feedback = feedback_layers(model)
    if not feedback:
        raise ValueError(
            f"Model {model.name} has no feedback-alignment layers (FeedbackAlignmentDense, "
            "FeedbackAlignmentConv2D).")
    loss = resolve_loss(model, loss)
    layers = _named(kernel_layers(model), model)
    fixed = _kernel_gradients(model, layers, x, y, loss, training, {})
    transposed = {id(layer.feedback): layer.kernel for layer in feedback}
    true = _kernel_gradients(model, layers, x, y, loss, training, transposed)
    return {name: angle_between(fixed[name], true[name]) for name in layers}


def resolve_loss(model, loss):
    """`loss` as a callable, or the model's compiled loss."""
    if loss is None:
        loss = getattr(model, "loss", None)
        if loss is None:
            raise ValueError(
                f"Model {model.name} is not compiled with a loss: pass `loss=` (e.g. "
                "keras.losses.SparseCategoricalCrossentropy(from_logits=True))."
            )
    if isinstance(loss, (list, tuple, dict)):
        raise ValueError("Update angles need a single-output model with one loss.")
    try:
        return keras.losses.get(loss)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`loss` must be a Keras loss, got {loss!r} ({error}).") from None


def _kernel_gradients(model, layers, x, y, loss, training, replacements):
    """Kernel gradients of the mean loss, some non-trainable values replaced."""
    trainable = model.trainable_variables
    non_trainable = [
        ops.copy(replacements.get(id(variable), variable))
        for variable in model.non_trainable_variables
    ]
    x = ops.convert_to_tensor(x)
    y = ops.convert_to_tensor(y)

    def loss_of(values):
        outputs, _ = model.stateless_call(values, non_trainable, x, training=training)
        return ops.mean(loss(y, outputs))

    found = backend.gradients(loss_of, trainable)
    index = {id(variable): position for position, variable in enumerate(trainable)}
    return {
        name: ops.convert_to_numpy(found[index[id(layer.kernel)]]) for name, layer in layers.items()
    }


def _named(layers, model):
    named = {}
    for layer in layers:
        if layer.name in named:
            raise ValueError(f"Model {model.name} has two layers named {layer.name!r}.")
        named[layer.name] = layer
    return named
