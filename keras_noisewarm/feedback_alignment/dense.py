"""A densely-connected layer that learns by feedback alignment.

Backpropagation sends a layer's error to its input through the transpose of
the layer's own weights, `W^T`: the backward pass must know the forward
weights ("weight transport"), which a brain cannot do. Feedback alignment
(Lillicrap et al., Nature Communications 2016) sends it through a fixed
random matrix `B` instead, of the same shape as `W`; the forward pass and the
weight and bias gradients stay as they are. Learning still works because the
forward weights come to align with `B`.
"""

import keras
from keras import ops

from keras_noisewarm import validation


@ops.custom_gradient
def feedback_matmul(inputs, kernel, feedback):
    """`inputs @ kernel`, whose gradient reaches `inputs` through `feedback`.

    The value is the ordinary product over the last axis of `inputs`. In the
    backward pass, with `upstream` the gradient of the loss with respect to
    the product:

    - the gradient sent to `inputs` is `upstream @ feedback^T` (backpropagation
      would use `kernel^T`),
    - the gradient of `kernel` is the usual `inputs^T @ upstream`, summed over
      every leading axis,
    - `feedback` gets a zero gradient: it is fixed.

    Built on `keras.ops.custom_gradient`, so it runs on every backend, also
    inside compiled (`jit_compile`) train steps. Pass tensors, not variables
    (`keras.ops.copy(layer.kernel)`): TensorFlow's custom gradients refuse a
    variable given directly.

    Args:
        inputs: Tensor of shape `(..., input_dim)`.
        kernel: Tensor of shape `(input_dim, units)`.
        feedback: Tensor of the same shape as `kernel`.

    Returns:
        A tensor of shape `(..., units)`.

    Example:

    >>> import numpy as np
    >>> x = np.ones((2, 3), "float32")
    >>> kernel = np.full((3, 4), 0.5, "float32")
    >>> keras.ops.convert_to_numpy(feedback_matmul(x, kernel, -kernel)).tolist()[0]
    [1.5, 1.5, 1.5, 1.5]
    """

    def gradient(*args, upstream=None):
        # TensorFlow and JAX pass `upstream` positionally, torch by keyword.
        if upstream is None:
            (upstream,) = args
        input_gradient = ops.matmul(upstream, ops.transpose(feedback))
        flat_inputs = ops.reshape(inputs, (-1, ops.shape(inputs)[-1]))
        flat_upstream = ops.reshape(upstream, (-1, ops.shape(upstream)[-1]))
        kernel_gradient = ops.matmul(ops.transpose(flat_inputs), flat_upstream)
        return input_gradient, kernel_gradient, ops.zeros_like(feedback)

    return ops.matmul(inputs, kernel), gradient


def default_feedback_initializer():
    """N(0, 2 / fan_in) feedback weights: He-normal without truncation.

    The companion paper's choice (Cheon, Lee & Paik, NeurIPS 2024). Keras's
    `"he_normal"` truncates at two standard deviations; this does not.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0, mode="fan_in", distribution="untruncated_normal"
    )


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class FeedbackAlignmentDense(keras.layers.Layer):
    """A `Dense` layer whose backward pass uses a fixed random matrix.

    The forward pass is `Dense`'s: `activation(inputs @ kernel + bias)`. The
    gradient sent back to the layer's input is `upstream @ feedback^T`, where
    `feedback` is a random matrix of the kernel's shape, drawn once when the
    layer is built and never trained (Lillicrap et al., 2016); the gradients
    of `kernel` and `bias` are the usual ones. A network of these layers
    learns without weight transport. `feedback` is a non-trainable weight:
    it is saved and reloaded with the model (exactly) and no optimizer
    touches it.

    It runs in `model.fit` on the TensorFlow, JAX and PyTorch backends, with
    or without `jit_compile`. To turn an existing MLP into its
    feedback-alignment twin, use
    `keras_noisewarm.feedback_alignment.to_feedback_alignment`.

    Args:
        units: Dimensionality of the output.
        activation: Activation function (name or callable); `None` for none.
        use_bias: Whether the layer adds a bias vector.
        kernel_initializer: Initializer of the forward weights.
        bias_initializer: Initializer of the bias.
        feedback_initializer: Initializer of the feedback matrix: any Keras
            initializer (name, config or instance); default: normal with
            standard deviation `sqrt(2 / fan_in)`, the companion paper's
            choice. A seeded initializer instance gives the same matrix to
            every layer of the same shape; leave the seed unset and use
            `keras.utils.set_random_seed` for reproducible, distinct ones.
        kernel_regularizer: Regularizer of the forward weights.
        bias_regularizer: Regularizer of the bias.
        activity_regularizer: Regularizer of the output.
        kernel_constraint: Constraint of the forward weights.
        bias_constraint: Constraint of the bias.
        **kwargs: Base layer arguments (`name`, `dtype`, `trainable`).

    Example:

    >>> import numpy as np
    >>> layer = FeedbackAlignmentDense(4, activation="relu")
    >>> outputs = layer(np.ones((2, 3), "float32"))
    >>> tuple(outputs.shape), [w.name for w in layer.trainable_weights]
    ((2, 4), ['kernel', 'bias'])
    >>> [w.name for w in layer.non_trainable_weights]
    ['feedback']
    """

    def __init__(
        self,
        units,
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        feedback_initializer=None,
        kernel_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = validation.check_int("units", units)
        self.activation = keras.activations.get(activation)
        self.use_bias = validation.check_bool("use_bias", use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        if feedback_initializer is None:
            feedback_initializer = default_feedback_initializer()
        self.feedback_initializer = keras.initializers.get(feedback_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.input_spec = keras.layers.InputSpec(min_ndim=2)
        self.supports_masking = True

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"The last axis of the inputs of {self.name} must be known, got "
                f"input shape {input_shape}."
            )
        shape = (input_dim, self.units)
        self.kernel = self.add_weight(
            name="kernel",
            shape=shape,
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.feedback = self.add_weight(
            name="feedback",
            shape=shape,
            initializer=self.feedback_initializer,
            trainable=False,
        )
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: input_dim})

    def call(self, inputs):
        outputs = feedback_matmul(inputs, ops.copy(self.kernel), ops.copy(self.feedback))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        serialize = keras.saving.serialize_keras_object
        config.update({
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": serialize(self.kernel_initializer),
            "bias_initializer": serialize(self.bias_initializer),
            "feedback_initializer": serialize(self.feedback_initializer),
            "kernel_regularizer": serialize(self.kernel_regularizer),
            "bias_regularizer": serialize(self.bias_regularizer),
            "kernel_constraint": serialize(self.kernel_constraint),
            "bias_constraint": serialize(self.bias_constraint),
        })
        return config
