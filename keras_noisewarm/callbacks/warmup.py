"""A callback that runs the noise warm-up at the start of `model.fit`."""

import weakref

import keras

from keras_noisewarm.noise_warmup import NoiseWarmup


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class NoiseWarmupCallback(keras.callbacks.Callback):
    """Warms the model up on random noise when `model.fit` starts.

    `model.fit(..., callbacks=[NoiseWarmupCallback(10)])` gives the same
    result as calling `keras_noisewarm.warmup(model, 10)` and then
    `model.fit(...)`: the warm-up runs at the beginning of the first epoch,
    before the first training step, and the fit then proceeds as if it had
    been done beforehand. The warm-up is `keras_noisewarm.NoiseWarmup`, which
    trains a wrapper that shares the model's layers but has its own fresh
    optimizer and compile state, so that the outer fit's epochs, `History`,
    other callbacks, learning-rate schedules and optimizer state (its
    iteration count included) only ever see the outer training.

    With a `budget` (a fraction of the training), the training's length is
    read from the fit itself: its steps per epoch times its epochs, counted
    in warm-up batches (so a budget of 0.1 is a tenth of the fit's steps).

    The warm-up runs once per model: not when training resumes at a later
    epoch (`initial_epoch > 0`, or `keras.callbacks.BackupAndRestore`
    restoring a run), and not again when the same model is fit again with
    this callback.

    Args:
        num_classes: Number of classes, or `None` to take it from the width
            of the model's output.
        **kwargs: Any argument of `keras_noisewarm.NoiseWarmup`:
            `num_examples`, `steps`, `batch_size`, `optimizer`,
            `learning_rate`, `noise`, `task`, `from_logits`, `input_shape`,
            `seed`, `verbose`, `callbacks`, `noise_source`. When `verbose` is
            not given, the warm-up follows the `verbose` of the outer fit: a
            progress bar unless the fit is silent.

    Attributes:
        warmup_history: The `keras.callbacks.History` of the warm-up, once
            it has run (`None` before).

    Example:

    >>> import numpy as np
    >>> model = keras.Sequential([
    ...     keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...     keras.layers.Dense(3)])
    >>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
    ...     from_logits=True))
    >>> x = np.random.normal(size=(64, 8)).astype("float32")
    >>> y = np.random.randint(0, 3, size=64)
    >>> warm_up = NoiseWarmupCallback(3, steps=5, seed=0)
    >>> history = model.fit(x, y, epochs=2, verbose=0, callbacks=[warm_up])
    >>> warm_up.warmup_history.params["steps"], len(history.history["loss"])
    (5, 2)
    """

    def __init__(self, num_classes=None, **kwargs):
        super().__init__()
        # Built once here, so that arguments that cannot work fail now.
        NoiseWarmup(num_classes=num_classes, **kwargs)
        self.num_classes = num_classes
        self.warmup_kwargs = kwargs
        self.warmup_history = None
        self._warmed_up_model = None

    def warmup_config(self):
        """The `keras_noisewarm.NoiseWarmup` this callback runs."""
        kwargs = dict(self.warmup_kwargs)
        if "verbose" not in kwargs:
            kwargs["verbose"] = (self.params or {}).get("verbose", "auto")
        return NoiseWarmup(num_classes=self.num_classes, **kwargs)

    def on_epoch_begin(self, epoch, logs=None):
        # Epoch begin rather than train begin: the epoch tells a fresh start
        # from a resumed one, and `BackupAndRestore` has restored its
        # weights by then whatever the order of the callbacks.
        if epoch != 0 or self._has_warmed_up(self.model):
            return
        config = self.warmup_config()
        training_examples = self.training_examples()
        self.warmup_history = config.run(self.model, training_examples=training_examples)
        # The warm-up's own fit (a stopping rule, say) must not end this one.
        self.model.stop_training = False
        self._warmed_up_model = weakref.ref(self.model)

    def training_examples(self):
        """The outer fit's length in examples, for a `budget`: its steps times
        the warm-up's batch size (`None` when the fit does not say its steps)."""
        params = self.params or {}
        steps, epochs = params.get("steps"), params.get("epochs")
        if not steps or not epochs:
            return None
        return int(steps) * int(epochs) * self.warmup_config().batch_size

    def _has_warmed_up(self, model):
        return self._warmed_up_model is not None and self._warmed_up_model() is model

    def get_config(self):
        # The arguments given here, serialised as NoiseWarmup serialises
        # them (the older distribution/mean/std become `noise`); `verbose`
        # only if given, since otherwise it follows the outer fit.
        given = NoiseWarmup(
            num_classes=self.num_classes, **self.warmup_kwargs
        ).get_config()
        names = {
            "noise" if name in ("distribution", "mean", "std") else name
            for name in self.warmup_kwargs
        }
        config = {"num_classes": self.num_classes}
        config.update({name: given[name] for name in sorted(names)})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)
