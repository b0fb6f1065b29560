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


def predict_model_inputs(model, inputs, **kwargs):
    """`model.predict` on inputs that are already what the model's graph takes.

    A keras-hub `Task` (an `ImageClassifier`, say) maps its `preprocessor`
    over whatever its `predict` is given. Noise is drawn for the model's own
    inputs, which are the preprocessor's outputs (the warm-up trains there,
    through a `SharedLayersModel`), so it must not be preprocessed a second
    time. Predicting through a `SharedLayersModel` skips the preprocessing;
    for any other model it is plain `predict`.

    Args:
        model: A built Keras model.
        inputs: Its inputs (arrays, tensors or a dataset, as `predict` takes).
        **kwargs: Arguments of `predict` (`batch_size`, `verbose`...).

    Returns:
        The outputs, as `predict` returns them.
    """
    return SharedLayersModel(model, name=f"{model.name}_predict").predict(inputs, **kwargs)
