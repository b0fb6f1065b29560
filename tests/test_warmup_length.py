"""How long the warm-up runs: the default, budgets, recipes and the stopping rule."""

import keras
import numpy as np
import pytest

import keras_noisewarm
from keras_noisewarm import NoiseWarmup
from keras_noisewarm import recipes
from keras_noisewarm.callbacks import NoiseWarmupCallback
from keras_noisewarm.callbacks import WarmupStopping

NUM_CLASSES = 4


def small_model(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(NUM_CLASSES),
    ])


def test_the_default_is_a_tenth_of_the_training_or_100_steps_when_it_is_unknown():
    default = NoiseWarmup(NUM_CLASSES)
    assert default.recipe is recipes.DEFAULT
    assert default.batch_size == 128
    # The main job: 4,000 images x 30 epochs; a tenth is 12,000 noise examples.
    assert default.num_steps(training_examples=120_000) == 94
    assert default.num_steps() == 100
    assert "unknown" in default.describe_length() and "training_examples" in default.describe_length()
    assert NoiseWarmup(NUM_CLASSES, training_examples=1_000).num_steps() == 1
    assert NoiseWarmup(NUM_CLASSES, budget=0.5, training_examples=2_560).num_steps() == 10


def test_the_default_warmup_runs_its_length_and_says_why():
    model = small_model()
    history = keras_noisewarm.warmup(model, NUM_CLASSES, training_examples=12_800, seed=0, verbose=0)
    assert history.params["steps"] == 10
    assert history.params["length"] == "10 steps of 128: budget 0.1 of the 12,800 training examples that follow"
    assert len(history.history["loss"]) == 1


def test_a_budget_without_the_training_fails_before_any_weight_changes():
    model = small_model()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match="training_examples=len"):
        NoiseWarmup(NUM_CLASSES, budget=0.1, seed=0, verbose=0).run(model)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("budget", [0, -0.1, float("nan"), "0.1", True])
def test_a_budget_must_be_a_positive_number(budget):
    with pytest.raises((ValueError, TypeError), match="budget"):
        NoiseWarmup(NUM_CLASSES, budget=budget)


@pytest.mark.parametrize("lengths", [dict(steps=10, budget=0.1), dict(num_examples=100, budget=0.1),
                                     dict(steps=10, num_examples=100)])
def test_one_length_at_most(lengths):
    with pytest.raises(ValueError, match="Give one of `steps`, `num_examples` and `budget`"):
        NoiseWarmup(NUM_CLASSES, **lengths)


def test_a_stopping_rule_with_nothing_to_watch_is_refused_when_built():
    with pytest.raises(ValueError, match="nothing to watch"):
        NoiseWarmup(NUM_CLASSES, steps=20, stop=WarmupStopping(check_every=10, patience=3))
    with pytest.raises(ValueError, match="`stop` must be"):
        NoiseWarmup(NUM_CLASSES, steps=20, stop="sometimes")


def test_the_stopping_rule_ends_the_warmup_near_the_prior():
    model = small_model()
    stopper = WarmupStopping(check_every=20)
    history = keras_noisewarm.warmup(model, NUM_CLASSES, steps=2_000, stop=stopper, learning_rate=1e-3,
                                     seed=0, verbose=0)
    assert history.params["stopped_step"] is not None and history.params["stopped_step"] < 2_000
    gaps = history.params["prior_gaps"]
    assert gaps[-1] <= 0.5 * gaps[0]
    assert stopper.should_stop(gaps) and not stopper.should_stop(gaps[:-1])
    # It stopped where its rule first held, one check after the other.
    assert history.params["stopped_step"] == 20 * (len(gaps) - 1)


def test_the_recipes_are_the_authors_settings_and_arguments_override_them():
    resnet = NoiseWarmup(NUM_CLASSES, recipe="resnet")
    assert (resnet.num_steps(), resnet.batch_size) == (780, 256)
    optimizer = resnet.make_optimizer()
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert (optimizer.momentum, optimizer.weight_decay) == (0.9, 0.01)
    assert float(np.array(optimizer.learning_rate)) == pytest.approx(0.01)
    mlp = NoiseWarmup(NUM_CLASSES, recipe="mlp")
    assert mlp.num_steps(training_examples=10) == 2_500  # its length is fixed
    assert float(np.array(mlp.make_optimizer().learning_rate)) == pytest.approx(1e-4)
    assert NoiseWarmup(NUM_CLASSES, recipe="mlp", steps=7, batch_size=32).num_steps() == 7
    assert NoiseWarmup(NUM_CLASSES, recipe="resnet", budget=0.1, training_examples=25_600).num_steps() == 10
    with pytest.raises(ValueError, match="Unknown warm-up recipe"):
        NoiseWarmup(NUM_CLASSES, recipe="vit")


def test_the_callback_reads_the_budget_off_the_fit():
    model = small_model()
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(size=(640, 6)).astype("float32")
    y = np.arange(640) % NUM_CLASSES
    callback = NoiseWarmupCallback(NUM_CLASSES, budget=0.5, seed=0, verbose=0)
    # 20 steps per epoch x 3 epochs; half of them, in warm-up batches.
    model.fit(x, y, batch_size=32, epochs=3, verbose=0, callbacks=[callback])
    assert callback.warmup_history.params["steps"] == 30


def test_outside_a_terminal_progress_is_a_few_lines(capsys):
    keras_noisewarm.warmup(small_model(), NUM_CLASSES, steps=200, seed=0, verbose="auto")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "Noise warm-up: 200 steps of 128 (steps=200)"
    assert [line.split(",")[0].strip() for line in lines[1:]] == [
        "step 50/200", "step 100/200", "step 150/200", "step 200/200"]
