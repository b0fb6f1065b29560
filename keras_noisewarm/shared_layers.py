"""A model that runs another model's layers with a compile state of its own."""

import keras


class SharedLayersModel(keras.Model):
    """Calls `model`, sharing its layers, weights and BatchNorm statistics.

    Keras ignores the compiled loss and metrics of a nested model (it is a
    `Trainer` of its own), so compiling and fitting (or evaluating) this
    wrapper leaves the wrapped model's loss, metrics, optimizer, optimizer
    state and history alone while it reads and updates the same weights.
    The warm-up trains through one, the `CalibrationMonitor` evaluates
    through one.

    Args:
        model: The model whose layers to share; it must be built.
        name: Name of the wrapper.
    """

    def __init__(self, model, name):
        super().__init__(name=name)
        self.wrapped = model
        self.built = True

    def call(self, inputs, training=None):
        return self.wrapped(inputs, training=training)
