"""A 2-D convolution that learns by feedback alignment."""

import keras
from keras import ops

from keras_noisewarm.feedback_alignment.dense import default_feedback_initializer


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class FeedbackAlignmentConv2D(keras.layers.Conv2D):
    """A `Conv2D` layer whose backward pass uses a fixed random kernel.

    The forward pass is `Conv2D`'s. The gradient sent back to the layer's
    input is the one a convolution with the `feedback` kernel (random, of
    the kernel's shape, never trained) would send, instead of the one
    through the layer's own kernel; the gradients of `kernel` and `bias` are
    the usual ones. `feedback` is a non-trainable weight: saved and reloaded
    with the model, exactly.

    A convolution's input gradient has no `keras.ops` of its own, so the
    layer computes `conv(stop_gradient(x), kernel) + (f - stop_gradient(f))`
    with `f = conv(x, stop_gradient(feedback))`: the second term is exactly
    zero in value and carries the feedback gradient to `x`. It costs a second
    convolution in the forward pass.

    Args:
        *args: `Conv2D`'s arguments (`filters`, `kernel_size`, `strides`,
            `padding`, ...); LoRA is not supported.
        feedback_initializer: Initializer of the feedback kernel; default:
            normal with standard deviation `sqrt(2 / fan_in)`, fan-in being
            `kernel height * kernel width * input channels`.
        **kwargs: `Conv2D`'s keyword arguments.

    Example:

    >>> import numpy as np
    >>> layer = FeedbackAlignmentConv2D(4, 3, padding="same")
    >>> tuple(layer(np.ones((1, 5, 5, 2), "float32")).shape)
    (1, 5, 5, 4)
    >>> [w.name for w in layer.non_trainable_weights]
    ['feedback']
    """

    def __init__(self, *args, feedback_initializer=None, **kwargs):
        if kwargs.get("lora_rank"):
            raise ValueError("FeedbackAlignmentConv2D does not support LoRA (`lora_rank`).")
        super().__init__(*args, **kwargs)
        if feedback_initializer is None:
            feedback_initializer = default_feedback_initializer()
        self.feedback_initializer = keras.initializers.get(feedback_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        self.feedback = self.add_weight(
            name="feedback",
            shape=self._kernel.shape,
            initializer=self.feedback_initializer,
            trainable=False,
        )

    def convolution_op(self, inputs, kernel):
        forward = super().convolution_op(ops.stop_gradient(inputs), kernel)
        feedback = super().convolution_op(inputs, ops.stop_gradient(self.feedback))
        return ops.add(forward, ops.subtract(feedback, ops.stop_gradient(feedback)))

    def save_own_variables(self, store):
        super().save_own_variables(store)
        if self.built:
            store[str(self._feedback_index())] = self.feedback

    def load_own_variables(self, store):
        super().load_own_variables(store)
        if self.built:
            self.feedback.assign(store[str(self._feedback_index())])

    def _feedback_index(self):
        # Conv2D stores the kernel as "0" and the bias, if any, as "1".
        return 2 if self.use_bias else 1

    def get_config(self):
        config = super().get_config()
        for name in ("lora_rank", "lora_alpha"):
            config.pop(name, None)
        config["feedback_initializer"] = keras.saving.serialize_keras_object(
            self.feedback_initializer)
        return config
