"""A stopping rule for the warm-up, read off the model itself."""

import keras
import numpy as np

from keras_noisewarm import validation
from keras_noisewarm.shared_layers import SharedLayersModel


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class WarmupStopping(keras.callbacks.Callback):
    """Stops the warm-up once the model sits near its prior on noise and has stopped moving.

    Every `check_every` warm-up steps the model predicts a fixed set of noise
    inputs in inference mode, and each output's distance from its
    uninformative prior is measured (`keras_noisewarm.tasks.Task.prior_gap`:
    for a classifier, the excess of the mean confidence, or of the most
    predicted class's share, over chance). The warm-up stops at the first
    check where both hold:

    - *near the prior*: the gap has fallen to at most `1 - progress` of its
      value before the warm-up;
    - *no longer moving*: it fell by less than `min_delta` (relative) over
      the last `patience` checks.

    `NoiseWarmup(stop=WarmupStopping())` (or `stop="auto"`) runs it; the
    warm-up's length (`steps`, `num_examples` or `budget`) is then the most
    it may take. The gaps are recorded in `gaps` (one per check, the first
    before any step), and the step it stopped at in `stopped_step`.

    Args:
        progress: Share of the initial gap that must be gone, in `(0, 1)`.
        min_delta: Relative fall of the gap over `patience` checks below
            which it counts as no longer moving.
        patience: Number of checks the fall is measured over.
        check_every: Warm-up steps between checks; `None` (default): a
            twentieth of the warm-up's longest length, so that the rule looks
            twenty times whatever the length.
        num_examples: Noise inputs of each check.

    Example:

    >>> import keras_noisewarm
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4)])
    >>> stopper = WarmupStopping()
    >>> history = keras_noisewarm.warmup(
    ...     model, num_classes=4, steps=400, stop=stopper, seed=0, verbose=0,
    ...     learning_rate=1e-2)
    >>> stopper.stopped_step is not None and stopper.stopped_step < 400
    True
    """

    def __init__(self, progress=0.5, min_delta=0.1, patience=3, check_every=None, num_examples=256):
        super().__init__()
        self.progress = validation.check_fraction("progress", progress)
        self.min_delta = validation.check_number("min_delta", min_delta, minimum=0.0, maximum=1.0)
        self.patience = validation.check_int("patience", patience)
        self.check_every = validation.check_optional_int("check_every", check_every)
        self.num_examples = validation.check_int("num_examples", num_examples)
        self.gaps = []
        self.stopped_step = None
        self._probe = None

    def bind(self, model, noise_inputs, tasks, max_steps):
        """Given by the warm-up: the model to watch, fixed noise inputs, the outputs'
        tasks and the warm-up's longest length."""
        # Predicted through a wrapper made once: a keras-hub Task's predict
        # would run its preprocessor over the noise, which the warm-up
        # trains on unpreprocessed.
        self._probe = (SharedLayersModel(model, name=f"{model.name}_prior_gap"), noise_inputs, tuple(tasks))
        self._every = self.check_every or max(1, max_steps // 20)

    def checks_needed(self, max_steps):
        """Warm-up steps the rule needs before it can stop, at this length."""
        every = self.check_every or max(1, max_steps // 20)
        return every * (self.patience + 1)

    def gap(self):
        """The model's current distance from its prior (the largest over its outputs)."""
        if self._probe is None:
            raise RuntimeError("WarmupStopping runs inside NoiseWarmup(stop=...), which binds it.")
        model, noise_inputs, tasks = self._probe
        outputs = model.predict(noise_inputs, batch_size=256, verbose=0)
        flat = keras.tree.flatten(outputs)
        return max(task.prior_gap(np.asarray(output)) for task, output in zip(tasks, flat))

    def on_train_begin(self, logs=None):
        self.gaps = [self.gap()]
        self.stopped_step = None

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        if step % self._every:
            return
        # Reading `self.model` makes the JAX trainer write its state back to
        # the variables, which the check then predicts with.
        trainer = self.model
        self.gaps.append(self.gap())
        if self.should_stop(self.gaps):
            self.stopped_step = step
            trainer.stop_training = True

    def should_stop(self, gaps):
        """The rule, on the gaps measured so far (the first before the warm-up)."""
        initial, current = gaps[0], gaps[-1]
        if len(gaps) <= self.patience or current > (1.0 - self.progress) * initial:
            return False
        earlier = gaps[-1 - self.patience]
        return earlier <= 0 or (earlier - current) / earlier < self.min_delta

    def get_config(self):
        return {
            "progress": self.progress,
            "min_delta": self.min_delta,
            "patience": self.patience,
            "check_every": self.check_every,
            "num_examples": self.num_examples,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)
