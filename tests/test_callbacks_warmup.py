import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_noisewarm import warmup
from keras_noisewarm.callbacks import NoiseWarmupCallback

NUM_CLASSES = 4
INPUT_DIM = 16
BATCH_SIZE = 64
NUM_EXAMPLES = 256
STEPS_PER_EPOCH = NUM_EXAMPLES // BATCH_SIZE
WARMUP_STEPS = 20


def training_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((NUM_EXAMPLES, INPUT_DIM)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + 2 * (x[:, 1] > 0).astype("int64")
    return x, y


def compiled_model(seed=7):
    """A small MLP with every kind of state the warm-up touches.

    Dropout is seeded: unseeded dropout on the torch backend draws from
    torch's global generator, whose draws the warm-up and `fit` take in a
    different order when the warm-up runs inside `fit`.
    """
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((INPUT_DIM,)),
            keras.layers.Dense(32, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dropout(0.2, seed=3),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(NUM_CLASSES),
        ]
    )
    model.compile(
        keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-3, 4, 0.5)),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def optimizer_state(model):
    return [np.array(variable) for variable in model.optimizer.variables]


def assert_same_arrays(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


class CountCalls(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = 0
        self.epochs = []

    def on_train_batch_end(self, batch, logs=None):
        self.batches += 1

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_callback_gives_the_weights_and_optimizer_state_of_warmup_then_fit(capsys):
    # The learning rate decays with optimizer.iterations: warm-up steps must
    # not advance it, nor leave moments in the Adam state.
    x, y = training_data()
    reference = compiled_model()
    warmup(reference, steps=WARMUP_STEPS, seed=0, verbose=0)
    reference_history = reference.fit(x, y, batch_size=BATCH_SIZE, epochs=3, verbose=0)

    model = compiled_model()
    callback = NoiseWarmupCallback(steps=WARMUP_STEPS, seed=0)
    history = model.fit(x, y, batch_size=BATCH_SIZE, epochs=3, verbose=0, callbacks=[callback])

    assert_same_arrays(model.get_weights(), reference.get_weights())
    assert_same_arrays(optimizer_state(model), optimizer_state(reference))
    assert history.history == reference_history.history
    assert int(model.optimizer.iterations.numpy()) == 3 * STEPS_PER_EPOCH
    # History holds the outer epochs only; the warm-up has its own.
    assert history is model.history
    assert history.epoch == [0, 1, 2]
    assert {name: len(values) for name, values in history.history.items()} == {
        "loss": 3, "accuracy": 3,
    }
    assert callback.warmup_history.params["steps"] == WARMUP_STEPS
    # A silent fit gives a silent warm-up.
    assert capsys.readouterr().out == ""


class StopAfterThreeSteps(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.steps == 3:
            self.model.stop_training = True


@pytest.fixture(scope="module")
def fit_among_other_callbacks():
    """A fit whose warm-up stops itself early, among a counter and a schedule."""
    x, y = training_data()
    model = compiled_model()
    model.compile(keras.optimizers.Adam(1e-3), model.loss)
    stopper = StopAfterThreeSteps()
    counter = CountCalls()
    history = model.fit(
        x, y, batch_size=BATCH_SIZE, epochs=3, verbose=0,
        callbacks=[
            NoiseWarmupCallback(steps=WARMUP_STEPS, seed=0, callbacks=[stopper]),
            counter,
            keras.callbacks.LearningRateScheduler(lambda epoch: 1e-3 * 0.5**epoch),
        ],
    )
    return dict(model=model, history=history.history, stopper=stopper, counter=counter)


def test_warmup_that_stops_early_does_not_stop_the_outer_fit(fit_among_other_callbacks):
    run = fit_among_other_callbacks
    assert run["stopper"].steps == 3  # the warm-up itself stopped ...
    assert not run["model"].stop_training  # ... but not the outer fit.
    assert len(run["history"]["loss"]) == 3
    assert run["counter"].batches == 3 * STEPS_PER_EPOCH


def test_other_callbacks_and_epoch_learning_rate_schedule_see_only_the_outer_fit(
    fit_among_other_callbacks,
):
    run = fit_among_other_callbacks
    assert run["counter"].epochs == [0, 1, 2]
    assert run["counter"].batches == 3 * STEPS_PER_EPOCH
    np.testing.assert_allclose(run["history"]["learning_rate"], [1e-3, 5e-4, 2.5e-4], rtol=1e-6)
    assert float(np.array(run["model"].optimizer.learning_rate)) == pytest.approx(2.5e-4)
    assert int(run["model"].optimizer.iterations.numpy()) == 3 * STEPS_PER_EPOCH


def test_warmup_runs_once_per_model_and_again_for_a_new_model():
    x, y = training_data()
    counter = CountCalls()
    callback = NoiseWarmupCallback(steps=WARMUP_STEPS, seed=0, callbacks=[counter])
    model = compiled_model()
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    first_history = callback.warmup_history
    model.fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    assert counter.batches == WARMUP_STEPS
    assert callback.warmup_history is first_history

    compiled_model(seed=8).fit(x, y, batch_size=BATCH_SIZE, epochs=1, verbose=0, callbacks=[callback])
    assert counter.batches == 2 * WARMUP_STEPS


def test_resumed_fit_does_not_warm_up():
    x, y = training_data()
    model = compiled_model()
    counter = CountCalls()
    callback = NoiseWarmupCallback(steps=WARMUP_STEPS, seed=0, callbacks=[counter])
    history = model.fit(
        x, y, batch_size=BATCH_SIZE, epochs=3, initial_epoch=2, verbose=0, callbacks=[callback]
    )
    assert history.epoch == [2]
    assert callback.warmup_history is None
    assert counter.batches == 0  # no warm-up step ran


def generator(x, y):
    while True:
        for start in range(0, len(x), BATCH_SIZE):
            yield x[start:start + BATCH_SIZE], y[start:start + BATCH_SIZE]


@pytest.fixture(scope="module")
def unshuffled_reference_weights():
    x, y = training_data()
    reference = compiled_model()
    warmup(reference, steps=WARMUP_STEPS, seed=0, verbose=0)
    reference.fit(x, y, batch_size=BATCH_SIZE, epochs=2, shuffle=False, verbose=0)
    return reference.get_weights()


@pytest.mark.parametrize("kind", ["dataset", "generator"])
def test_works_with_datasets_and_generators(kind, unshuffled_reference_weights):
    x, y = training_data()
    if kind == "dataset":
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH_SIZE)
        steps = None
    else:
        data = generator(x, y)
        steps = STEPS_PER_EPOCH
    model = compiled_model()
    history = model.fit(
        data, epochs=2, steps_per_epoch=steps, shuffle=False, verbose=0,
        callbacks=[NoiseWarmupCallback(steps=WARMUP_STEPS, seed=0)],
    )
    assert len(history.history["loss"]) == 2
    assert int(model.optimizer.iterations.numpy()) == 2 * STEPS_PER_EPOCH
    for a, b in zip(model.get_weights(), unshuffled_reference_weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_progress_bar_is_shown_before_the_first_epoch_of_a_verbose_fit(capsys):
    x, y = training_data()
    compiled_model().fit(
        x, y, batch_size=BATCH_SIZE, epochs=1, verbose=1,
        callbacks=[NoiseWarmupCallback(steps=WARMUP_STEPS, seed=0)],
    )
    shown = capsys.readouterr().out
    assert f"Noise warm-up: {WARMUP_STEPS} steps of 128 (steps={WARMUP_STEPS})" in shown
    assert f"{WARMUP_STEPS}/{WARMUP_STEPS}" in shown
    assert shown.index("Noise warm-up") < shown.index(f"{STEPS_PER_EPOCH}/{STEPS_PER_EPOCH}")


@pytest.mark.parametrize(
    "kwargs,error,message",
    [
        (dict(steps=0), ValueError, "steps"),
        (dict(num_classes=3), ValueError, "num_classes=4"),
        (dict(learning_rate=-1.0), ValueError, "learning_rate"),
        (dict(stepz=5), TypeError, "stepz"),
    ],
)
def test_invalid_arguments_raise_before_any_training_step(kwargs, error, message):
    x, y = training_data()
    model = compiled_model()
    weights = model.get_weights()
    counter = CountCalls()
    with pytest.raises(error, match=message):
        model.fit(
            x, y, batch_size=BATCH_SIZE, epochs=2, verbose=0,
            callbacks=[NoiseWarmupCallback(verbose=0, **kwargs), counter],
        )
    assert counter.batches == 0
    assert_same_arrays(model.get_weights(), weights)


def test_config_round_trips_through_keras_serialization():
    original = NoiseWarmupCallback(
        10, steps=12, optimizer=keras.optimizers.SGD(0.01, momentum=0.9), seed=3
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(original)
    )
    assert isinstance(restored, NoiseWarmupCallback)
    assert restored.get_config() == original.get_config()
    config = restored.warmup_config()
    assert (config.num_classes, config.steps, config.seed) == (10, 12, 3)
    assert isinstance(config.make_optimizer(), keras.optimizers.SGD)
    # Not given, so still taken from the outer fit.
    assert "verbose" not in restored.get_config()
