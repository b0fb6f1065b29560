"""Turning a backpropagation MLP into its feedback-alignment twin, and back."""

import keras

from keras_noisewarm import validation
from keras_noisewarm.feedback_alignment.convolutional import FeedbackAlignmentConv2D
from keras_noisewarm.feedback_alignment.dense import FeedbackAlignmentDense
from keras_noisewarm.feedback_alignment.dense import default_feedback_initializer

# Arguments of Dense and Conv2D that the feedback-alignment layers do not take.
_BACKPROPAGATION_ONLY = ("lora_rank", "lora_alpha", "quantization_config")
# Each converted class (exactly that class: subclasses may behave otherwise)
# and its feedback-alignment counterpart.
_COUNTERPARTS = {
    keras.layers.Dense: FeedbackAlignmentDense,
    keras.layers.Conv2D: FeedbackAlignmentConv2D,
}


def to_feedback_alignment(model, feedback_initializer=None, seed=None):
    """The feedback-alignment twin of a Sequential or functional model.

    Every `keras.layers.Dense` layer becomes a `FeedbackAlignmentDense`, and
    every `keras.layers.Conv2D` a `FeedbackAlignmentConv2D` (exactly those
    classes, not subclasses, whose behaviour may differ), with the same
    arguments, name, kernel and bias, and a new feedback matrix; every other
    layer is cloned with its weights (BatchNorm statistics included).
    The twin computes exactly the same outputs as `model`; only its
    backward pass differs. Nested Sequential and functional models are
    converted too. The twin is not compiled; `model` is left as it is.

    Args:
        model: A built Sequential or functional `keras.Model` (a subclassed
            model cannot be cloned layer by layer).
        feedback_initializer: Initializer of the feedback matrices (name,
            config or instance); default: normal with standard deviation
            `sqrt(2 / fan_in)`.
        seed: Optional integer. Given, the `i`-th converted layer draws its
            feedback with `seed + i` (the initializer's own seed is
            replaced), so the twin is reproducible and its layers' matrices
            differ; `None` draws from the global seed
            (`keras.utils.set_random_seed`).

    Returns:
        The twin, a new `keras.Model` of the same kind.

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([
    ...     keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
    ...     keras.layers.Dense(3)])
    >>> twin = to_feedback_alignment(model, seed=0)
    >>> [type(layer).__name__ for layer in twin.layers]
    ['FeedbackAlignmentDense', 'FeedbackAlignmentDense']
    >>> x = np.ones((2, 4), "float32")
    >>> bool(np.all(model.predict(x, verbose=0) == twin.predict(x, verbose=0)))
    True
    """
    seed = validation.check_seed("seed", seed)
    template = keras.initializers.get(
        default_feedback_initializer() if feedback_initializer is None else feedback_initializer
    )
    template_config = keras.saving.serialize_keras_object(template)
    converted = []

    def clone(layer):
        counterpart = _COUNTERPARTS.get(type(layer))
        if counterpart is None:
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        if config.get("lora_rank") or config.get("quantization_config") or getattr(
                layer, "quantization_mode", None):
            raise ValueError(
                f"Layer {layer.name} uses LoRA or quantization, which "
                f"{counterpart.__name__} does not support."
            )
        for name in _BACKPROPAGATION_ONLY:
            config.pop(name, None)
        initializer = keras.saving.deserialize_keras_object(template_config)
        if seed is not None:
            initializer_config = initializer.get_config()
            if "seed" not in initializer_config:
                raise ValueError(
                    f"`seed` was given, but the feedback initializer {template!r} takes no seed."
                )
            initializer = type(initializer).from_config(
                dict(initializer_config, seed=seed + len(converted))
            )
        converted.append(layer.name)
        return counterpart(feedback_initializer=initializer, **config)

    twin = _clone(model, clone)
    for original, copy in _paired_layers(model, twin):
        if type(original) in _COUNTERPARTS:
            _copy_kernel_and_bias(original, copy)
        else:
            copy.set_weights(original.get_weights())
    return twin


def to_backpropagation(model):
    """The backpropagation twin of a feedback-alignment model.

    Every `FeedbackAlignmentDense` becomes a `keras.layers.Dense`, every
    `FeedbackAlignmentConv2D` a `keras.layers.Conv2D`, with the same
    arguments, name, kernel and bias (the feedback matrices are dropped);
    every other layer is cloned with its weights. The twin computes the same
    outputs and learns by ordinary backpropagation: the inverse of
    `to_feedback_alignment`.

    Args:
        model: A built Sequential or functional `keras.Model`.

    Returns:
        The twin, a new uncompiled `keras.Model`.
    """

    originals = {counterpart: plain for plain, counterpart in _COUNTERPARTS.items()}

    def clone(layer):
        plain = originals.get(type(layer))
        if plain is None:
            return layer.__class__.from_config(layer.get_config())
        config = layer.get_config()
        config.pop("feedback_initializer")
        return plain(**config)

    twin = _clone(model, clone)
    for original, copy in _paired_layers(model, twin):
        if type(original) in originals:
            _copy_kernel_and_bias(original, copy)
        else:
            copy.set_weights(original.get_weights())
    return twin


def _copy_kernel_and_bias(original, copy):
    # NumPy copies: under JAX, two variables holding the same buffer break
    # the buffer donation of a compiled train step.
    copy.kernel.assign(original.kernel.numpy())
    if original.use_bias:
        copy.bias.assign(original.bias.numpy())


def _clone(model, clone_function):
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model, got {model!r}.")
    if not model.built:
        raise ValueError(f"Model {model.name} is not built: call it once or give it an Input.")
    try:
        return keras.models.clone_model(model, clone_function=clone_function, recursive=True)
    except ValueError as error:
        raise ValueError(
            f"Model {model.name} cannot be converted layer by layer (only Sequential and "
            f"functional models can): {error}"
        ) from None


def _paired_layers(original, copy):
    """(original layer, cloned layer) pairs, nested models walked through."""
    pairs = []
    first_layers, second_layers = (
        [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        for model in (original, copy)
    )
    if len(first_layers) != len(second_layers):
        raise RuntimeError(f"Cloning {original.name} changed its number of layers.")
    for first, second in zip(first_layers, second_layers):
        if first.name != second.name:
            raise RuntimeError(
                f"Cloning {original.name} reordered its layers ({first.name} vs {second.name})."
            )
        if isinstance(first, keras.Model):
            pairs += _paired_layers(first, second)
        else:
            pairs.append((first, second))
    return pairs
