"""A callback that logs how a feedback-alignment network aligns, per epoch."""

import keras
import numpy as np

from keras_noisewarm import validation
from keras_noisewarm.feedback_alignment import diagnostics


class FeedbackAlignmentMonitor(keras.callbacks.Callback):
    """Logs alignment angles and effective ranks at the end of every epoch.

    For a model with feedback-alignment layers (`FeedbackAlignmentDense`,
    `FeedbackAlignmentConv2D`), the monitor writes
    into the epoch's `logs`, with `prefix` (`"fa_"`) in front of each name:

    - `weight_angle_<layer>`: the angle in degrees between the layer's
      kernel `W` and its feedback matrix `B` (`weight_feedback_angles`),
      and `weight_angle`, their mean over the layers whose feedback reaches
      a trainable layer (`feedback_is_used`: the first layer of an MLP sends
      its error nowhere, so it is left out);
    - `effective_rank_<layer>`: the effective rank of every trainable
      kernel (`effective_rank`), and `effective_rank`, their mean;
    - given `data`, `update_angle_<layer>`: the angle between the
      feedback-alignment update of each kernel on that batch and the true
      backpropagation gradient (`update_angles`), and `update_angle`,
      their mean over the layers whose update passes through a feedback
      matrix (those before the last feedback layer).

    The `History`, progress bar and `CSVLogger` see these values (put the
    monitor before them in `callbacks`). The values measured when training
    begins are kept in `initial`. Nothing in the model changes: the
    gradients are computed without side effects.

    Args:
        data: Optional `(x, y)` batch of training or held-out examples for
            the update angles, used whole as one batch (a few hundred
            examples are plenty); `None` logs no update angle.
        loss: Loss of the update angles (a Keras loss name, instance or
            callable); `None` uses the model's compiled loss.
        training: Whether the update angles are measured in training mode
            (BatchNorm on batch statistics, like a training step).
        prefix: Put in front of every name written into `logs`.
        effective_ranks: Whether to log the effective ranks.

    Attributes:
        initial: The values measured when training began (a dict keyed
            like the logs), or `None` before the first `fit`.

    Example:

    ```python
    model = keras_noisewarm.feedback_alignment.to_feedback_alignment(mlp)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    monitor = keras_noisewarm.callbacks.FeedbackAlignmentMonitor(
        data=(x_train[:256], y_train[:256]))
    history = model.fit(x_train, y_train, epochs=10, callbacks=[monitor])
    history.history["fa_weight_angle"]  # one mean angle per epoch
    ```
    """

    def __init__(self, data=None, loss=None, training=True, prefix="fa_", effective_ranks=True):
        super().__init__()
        self.data = _checked_data(data)
        if loss is not None:
            loss = diagnostics.resolve_loss(None, loss)
        self.loss = loss
        self.training = validation.check_bool("training", training)
        if not isinstance(prefix, str):
            raise ValueError(f"`prefix` must be a string, got {prefix!r}.")
        self.prefix = prefix
        self.effective_ranks = validation.check_bool("effective_ranks", effective_ranks)
        self.initial = None

    def on_train_begin(self, logs=None):
        if not diagnostics.feedback_layers(self.model):
            raise ValueError(
                f"FeedbackAlignmentMonitor: model {self.model.name} has no "
                "feedback-alignment layers such as FeedbackAlignmentDense (see "
                "keras_noisewarm.feedback_alignment.to_feedback_alignment)."
            )
        if self.data is not None:
            # Fails here, before the first epoch, when no loss can be found.
            diagnostics.resolve_loss(self.model, self.loss)
        self.initial = self.measure()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(self.measure())

    def measure(self):
        """The values for the model as it is now: `{name: float}`."""
        model, prefix = self.model, self.prefix
        values = {}
        angles = diagnostics.weight_feedback_angles(model)
        used = diagnostics.feedback_is_used(model)
        for name, angle in angles.items():
            values[f"{prefix}weight_angle_{name}"] = angle
        used_angles = [angle for name, angle in angles.items() if used[name]]
        if used_angles:
            values[f"{prefix}weight_angle"] = float(np.mean(used_angles))
        if self.effective_ranks:
            ranks = diagnostics.weight_effective_ranks(model)
            for name, rank in ranks.items():
                values[f"{prefix}effective_rank_{name}"] = rank
            values[f"{prefix}effective_rank"] = float(np.mean(list(ranks.values())))
        if self.data is not None:
            x, y = self.data
            angles = diagnostics.update_angles(model, x, y, loss=self.loss, training=self.training)
            for name, angle in angles.items():
                values[f"{prefix}update_angle_{name}"] = angle
            through_feedback = [angles[name] for name in _updated_through_feedback(model)]
            if through_feedback:
                values[f"{prefix}update_angle"] = float(np.mean(through_feedback))
        return values


def _updated_through_feedback(model):
    """Names of the kernel layers before the model's last feedback layer."""
    layers = diagnostics.model_layers(model)
    feedback = diagnostics.feedback_layers(model)
    last = max(index for index, layer in enumerate(layers) if layer is feedback[-1])
    kernels = {id(layer) for layer in diagnostics.kernel_layers(model)}
    return [layer.name for layer in layers[:last] if id(layer) in kernels]


def _checked_data(data):
    if data is None:
        return None
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            "`data` must be a tuple (x, y) of one batch of inputs and targets, got "
            f"{type(data).__name__}."
        )
    x, y = (keras.ops.convert_to_numpy(part) for part in data)
    if x.ndim == 0 or y.ndim == 0 or len(x) == 0 or len(x) != len(y):
        raise ValueError(
            f"`data` must hold as many targets as inputs (at least one), got "
            f"shapes {x.shape} and {y.shape}."
        )
    return x, y
