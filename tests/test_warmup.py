import keras
import numpy as np
import pytest

import keras_noisewarm
from keras_noisewarm import NoiseWarmup
from keras_noisewarm import noise_confidence
from keras_noisewarm import warmup
from keras_noisewarm.backend import devices

NUM_CLASSES = 10


def deep_mlp(input_dim=64, depth=6, width=128, softmax=False):
    """The paper's MLP blocks: Dense (He-normal) -> ReLU -> BatchNorm."""
    layers = [keras.Input((input_dim,))]
    for _ in range(depth - 1):
        layers += [
            keras.layers.Dense(width, kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
    layers.append(
        keras.layers.Dense(
            NUM_CLASSES,
            kernel_initializer="he_normal",
            activation="softmax" if softmax else None,
        )
    )
    return keras.Sequential(layers)


def small_cnn(input_shape=(8, 8, 3)):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(16, 3, padding="same", kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
            keras.layers.Conv2D(32, 3, strides=2, padding="same", kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
            keras.layers.Flatten(),
            keras.layers.Dense(NUM_CLASSES, kernel_initializer="he_normal"),
        ]
    )


def weights_of(model):
    return [np.array(value) for value in model.get_weights()]


def assert_same_weights(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def small_data(input_dim=64, count=256):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((count, input_dim)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + 2 * (x[:, 1] > 0).astype("int64")
    return x, y


# The default warm-up (a tenth of the training, chosen for calibration after
# training on data) stops short of chance on noise; the mechanism is checked
# with a long warm-up that reaches it. See README, "Choosing the warm-up
# defaults".
WARMUP_TO_CHANCE = dict(learning_rate=3e-4, steps=4000)


@pytest.mark.parametrize("build_model", [deep_mlp, small_cnn], ids=["mlp", "cnn"])
def test_warmup_brings_confidence_and_class_bias_to_chance(build_model):
    model = build_model()
    before = noise_confidence(model)
    chance = 1.0 / NUM_CLASSES
    # Untrained: overconfident on noise, and predictions pile onto few classes.
    assert before.mean_confidence > chance + 0.1
    assert before.max_class_frequency > 3 * chance

    warmup(model, num_classes=NUM_CLASSES, seed=0, verbose=0, **WARMUP_TO_CHANCE)

    after = noise_confidence(model)
    assert abs(after.mean_confidence - chance) < 0.05
    # Measured over 6 weight seeds (JAX with noise stream versions 1 and 2,
    # TensorFlow with 2): the MLP's class frequencies end at 0.055-0.165 (the
    # CNN's, JAX, at 0.065-0.127), against a most frequent class above 0.3
    # before.
    assert after.class_frequencies.max() < 2 * chance
    assert after.class_frequencies.min() > 0.4 * chance


def test_softmax_model_warms_up_exactly_like_its_logit_twin():
    # Same initial weights; if the probabilities were mistaken for logits, the
    # loss and so the trajectory would differ.
    logits_model = deep_mlp(depth=3)
    softmax_model = deep_mlp(depth=3, softmax=True)
    softmax_model.set_weights(logits_model.get_weights())
    # A small step: at the default's 1e-3, 200 Adam steps amplify the float
    # rounding between log-softmax of logits and log of probabilities past
    # the tolerance (JAX: 207 of 8,192 weights off by up to 5.6e-4).
    for model in (logits_model, softmax_model):
        warmup(model, num_classes=NUM_CLASSES, steps=200, learning_rate=1e-4, seed=0, verbose=0)
    for a, b in zip(logits_model.get_weights(), softmax_model.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)
    assert noise_confidence(softmax_model).mean_confidence == pytest.approx(
        noise_confidence(logits_model).mean_confidence, abs=1e-3
    )


def test_warmup_leaves_compile_and_optimizer_state_unchanged():
    model = deep_mlp(depth=3)
    optimizer = keras.optimizers.Adam(1e-3)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    x, y = small_data()
    model.fit(x, y, batch_size=64, epochs=1, verbose=0)  # 4 steps of state
    history_before = model.history
    compile_config = model.get_compile_config()
    optimizer_state = [np.array(v) for v in optimizer.variables]
    assert int(optimizer.iterations.numpy()) == 4
    metrics_before = model.metrics
    weights_before = weights_of(model)

    warmup(model, num_classes=NUM_CLASSES, steps=20, seed=0, verbose=0)

    assert model.optimizer is optimizer
    assert model.loss is loss
    assert model.get_compile_config() == compile_config
    assert model.metrics == metrics_before
    assert model.history is history_before
    assert not model.stop_training
    assert int(optimizer.iterations.numpy()) == 4
    for variable, value in zip(optimizer.variables, optimizer_state):
        np.testing.assert_array_equal(np.array(variable), value)
    # ... while the weights did move.
    assert any(
        not np.array_equal(a, b) for a, b in zip(weights_before, weights_of(model))
    )


def test_fit_after_warmup_trains_normally():
    model = deep_mlp(depth=3)
    model.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    warmup(model, num_classes=NUM_CLASSES, steps=50, seed=0, verbose=0)
    x, y = small_data()
    history = model.fit(x, y, batch_size=64, epochs=8, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 8 * 4
    losses = history.history["loss"]
    assert len(losses) == 8
    assert losses[-1] < 0.5 * losses[0]
    assert history.history["accuracy"][-1] > 0.8


def test_warmup_of_an_uncompiled_model_leaves_it_uncompiled():
    model = deep_mlp(depth=3)
    warmup(model, num_classes=NUM_CLASSES, steps=5, seed=0, verbose=0)
    assert not model.compiled
    assert getattr(model, "optimizer", None) is None


@pytest.mark.parametrize("noise_source", ["stream", "device"])
def test_same_seed_gives_identical_weights_and_other_seed_differs(noise_source):
    model = deep_mlp(depth=3)
    initial = weights_of(model)

    def warmed_weights(seed):
        model.set_weights(initial)
        warmup(model, num_classes=NUM_CLASSES, steps=30, seed=seed, verbose=0,
               noise_source=noise_source)
        return weights_of(model)

    first = warmed_weights(5)
    assert_same_weights(first, warmed_weights(5))
    assert not all(np.array_equal(a, b) for a, b in zip(first, warmed_weights(6)))


def test_warmup_returns_history_of_the_requested_length():
    model = deep_mlp(depth=2)
    history = warmup(
        model, num_classes=NUM_CLASSES, num_examples=1000, batch_size=100, seed=0,
        verbose=0,
    )
    assert history.params["steps"] == 10
    assert list(history.history) == ["loss"]
    assert np.isfinite(history.history["loss"][0])


def test_num_examples_round_up_to_whole_batches():
    assert NoiseWarmup(num_examples=1001, batch_size=100).num_steps() == 11
    assert NoiseWarmup(steps=7).num_steps() == 7
    assert NoiseWarmup(recipe="mlp").num_steps() == 320_000 // 128


def test_user_callbacks_see_every_warmup_step():
    class CountBatches(keras.callbacks.Callback):
        count = 0

        def on_train_batch_end(self, batch, logs=None):
            CountBatches.count += 1

    warmup(
        deep_mlp(depth=2), num_classes=NUM_CLASSES, steps=12, seed=0, verbose=0,
        callbacks=[CountBatches()],
    )
    assert CountBatches.count == 12


def test_batchnorm_statistics_are_updated_on_noise():
    model = deep_mlp(depth=3)
    batchnorm = next(
        layer for layer in model.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )
    before = np.array(batchnorm.moving_mean)
    warmup(model, num_classes=NUM_CLASSES, steps=20, seed=0, verbose=0)
    assert not np.allclose(before, np.array(batchnorm.moving_mean))


def test_warmup_optimizer_instance_is_cloned_not_used():
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    warmup(
        deep_mlp(depth=2), num_classes=NUM_CLASSES, steps=5, optimizer=optimizer,
        seed=0, verbose=0,
    )
    assert optimizer.built is False
    assert int(np.array(optimizer.iterations)) == 0


def test_optimizer_spec_and_learning_rate_override():
    made = NoiseWarmup(optimizer="sgd", learning_rate=0.05).make_optimizer()
    assert isinstance(made, keras.optimizers.SGD)
    assert float(np.array(made.learning_rate)) == pytest.approx(0.05)
    default = NoiseWarmup().make_optimizer()
    assert isinstance(default, keras.optimizers.Adam)
    assert float(np.array(default.learning_rate)) == pytest.approx(1e-3)
    assert NoiseWarmup().make_optimizer() is not default


def test_binary_sigmoid_model_confidence_falls_towards_one_half():
    model = keras.Sequential(
        [
            keras.Input((16,)),
            keras.layers.Dense(64, activation="relu", kernel_initializer="he_normal"),
            keras.layers.Dense(
                1, activation="sigmoid",
                kernel_initializer=keras.initializers.RandomNormal(stddev=0.5),
            ),
        ]
    )
    before = noise_confidence(model)
    assert before.mean_confidence > 0.8
    warmup(model, steps=1000, learning_rate=3e-3, seed=0, verbose=0)
    after = noise_confidence(model)
    # A single logit trained on balanced random labels converges more slowly
    # than a softmax head (measured 0.56 after 1000 steps, 0.57 after 2000
    # at 1e-3), so the bound is looser than for the multi-class tests.
    assert after.mean_confidence < 0.6
    assert after.chance == 0.5


@pytest.mark.parametrize("noise_source", ["stream", "device"])
def test_both_noise_sources_pull_confidence_on_noise_down(noise_source):
    model = deep_mlp(depth=4)
    before = noise_confidence(model).mean_confidence
    warmup(model, num_classes=NUM_CLASSES, steps=300, learning_rate=1e-3, seed=0,
           verbose=0, noise_source=noise_source)
    after = noise_confidence(model).mean_confidence
    # Measured on all backends: 0.3-0.8 before, 0.13-0.16 after.
    assert after < 0.2 < before


def test_auto_noise_source_draws_on_the_device_under_torch_and_on_accelerators():
    expected = (
        "device"
        if keras.backend.backend() == "torch" or devices.has_accelerator()
        else "stream"
    )
    assert NoiseWarmup(NUM_CLASSES).resolved_noise_source() == expected
    assert NoiseWarmup(NUM_CLASSES, noise_source="stream").resolved_noise_source() == "stream"


def test_unknown_noise_source_raises_before_training():
    message = unchanged_after_error(deep_mlp(depth=2), num_classes=NUM_CLASSES, steps=1,
                                    noise_source="disk")
    assert "noise_source" in message and "'device'" in message


@pytest.mark.parametrize("noise_source", ["stream", "device"])
def test_multi_input_model_warms_up_every_branch(noise_source):
    image = keras.Input((8, 8, 1), name="image")
    meta = keras.Input((3,), name="meta")
    image_features = keras.layers.Dense(8, name="image_dense")(keras.layers.Flatten()(image))
    meta_features = keras.layers.Dense(8, name="meta_dense")(meta)
    logits = keras.layers.Dense(4)(
        keras.layers.Concatenate()([image_features, meta_features])
    )
    model = keras.Model([image, meta], logits)
    before = {name: np.array(model.get_layer(name).kernel) for name in ("image_dense", "meta_dense")}
    warmup(model, num_classes=4, steps=10, seed=0, verbose=0, noise_source=noise_source)
    for name, kernel in before.items():
        assert not np.allclose(kernel, np.array(model.get_layer(name).kernel))


def test_per_pixel_head_gets_per_pixel_noise_labels():
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(5, 1)]
    )
    spec = keras_noisewarm.inspection.inspect_model(model)
    assert spec.label_shape == (8, 8)
    history = warmup(model, num_classes=5, steps=5, seed=0, verbose=0)
    assert np.isfinite(history.history["loss"][0])


class TwoLayerClassifier(keras.Model):
    def __init__(self):
        super().__init__()
        self.hidden = keras.layers.Dense(16, activation="relu")
        self.head = keras.layers.Dense(3)

    def call(self, inputs):
        return self.head(self.hidden(inputs))


def test_subclassed_model_needs_and_accepts_input_shape():
    model = TwoLayerClassifier()
    with pytest.raises(ValueError, match=r"input_shape=\("):
        warmup(model, num_classes=3, steps=2, verbose=0)
    history = warmup(model, num_classes=3, input_shape=(5,), steps=3, seed=0, verbose=0)
    assert history.params["steps"] == 3


def test_detects_logits_and_probabilities():
    inspect = keras_noisewarm.inspection.inspect_model
    assert inspect(deep_mlp(depth=2)).from_logits is True
    assert inspect(deep_mlp(depth=2, softmax=True)).from_logits is False
    sigmoid = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, activation="sigmoid")])
    assert inspect(sigmoid).from_logits is False
    assert inspect(sigmoid).binary is True
    assert inspect(sigmoid).num_classes == 2


def unchanged_after_error(model, **kwargs):
    weights = weights_of(model)
    with pytest.raises(ValueError) as error:
        warmup(model, verbose=0, **kwargs)
    assert_same_weights(weights, weights_of(model))
    return str(error.value)


def test_output_width_mismatch_raises_before_training():
    message = unchanged_after_error(deep_mlp(depth=2), num_classes=7, steps=3)
    assert "num_classes=10" in message and "outputs 10 values" in message


def test_multi_output_model_with_one_task_for_all_outputs_raises_before_training():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, [keras.layers.Dense(3)(inputs), keras.layers.Dense(3)(inputs)])
    message = unchanged_after_error(model, task="classification", steps=3)
    assert "2 outputs" in message and "one task per output" in message


def test_integer_inputs_without_a_known_vocabulary_raise_before_training():
    codes = keras.Input((6,), dtype="int32")
    as_float = keras.layers.Lambda(lambda x: keras.ops.cast(x, "float32"))(codes)
    model = keras.Model(codes, keras.layers.Dense(3)(as_float))
    message = unchanged_after_error(model, num_classes=3, steps=3)
    assert "int32" in message and "Tokens(vocabulary_size)" in message


def test_unknown_input_dimension_raises_with_how_to_pass_the_shape():
    inputs = keras.Input((None, 4))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling1D()(inputs)))
    message = unchanged_after_error(model, num_classes=3, steps=3)
    assert "unknown dimension" in message and "input_shape=" in message
    warmup(model, num_classes=3, input_shape=(5, 4), steps=2, seed=0, verbose=0)


def test_from_logits_false_on_a_logit_model_raises():
    message = unchanged_after_error(deep_mlp(depth=2), from_logits=False, steps=3)
    assert "from_logits=True" in message


def test_non_classification_output_raises():
    regression = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    message = unchanged_after_error(regression, num_classes=5, steps=3)
    assert "single output unit" in message
    unit_interval = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(1), keras.layers.Activation("hard_sigmoid")]
    )
    message = unchanged_after_error(unit_interval, steps=3)
    assert "from_logits" in message


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(steps=0), "steps"),
        (dict(steps=-3), "steps"),
        (dict(num_examples=0), "num_examples"),
        (dict(batch_size=0), "batch_size"),
        (dict(steps=3, num_examples=100), "not both"),
        (dict(num_classes=1), "num_classes"),
        (dict(std=0.0), "std"),
        (dict(learning_rate=-1.0), "learning_rate"),
    ],
)
def test_invalid_sizes_raise_before_training(kwargs, message):
    text = unchanged_after_error(deep_mlp(depth=2), **kwargs)
    assert message in text


def test_noise_warmup_config_round_trips_through_keras_serialization():
    original = NoiseWarmup(
        num_classes=10, steps=12, batch_size=32,
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9), learning_rate=0.02,
        distribution="uniform", std=0.5, seed=3, verbose=0,
    )
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(original)
    )
    assert isinstance(restored, NoiseWarmup)
    assert restored.get_config() == original.get_config()
    assert isinstance(restored.make_optimizer(), keras.optimizers.SGD)


def test_noise_confidence_matches_a_direct_computation():
    model = deep_mlp(depth=3)
    result = noise_confidence(model, num_examples=300, batch_size=64, seed=9)
    inputs = np.concatenate(
        [
            np.asarray(batch)
            for batch, _ in keras_noisewarm.noise_dataset(
                (64,), NUM_CLASSES, batch_size=64, seed=9
            ).take(5)
        ]
    )[:300]
    logits = np.asarray(keras.ops.convert_to_numpy(model(inputs, training=False)), np.float64)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.mean_confidence, probabilities.max(axis=1).mean(), rtol=1e-5)
    np.testing.assert_allclose(
        result.class_frequencies,
        np.bincount(probabilities.argmax(axis=1), minlength=NUM_CLASSES) / 300,
    )


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.distribute strategies exist only under the TensorFlow backend",
)
def test_warmup_runs_inside_a_tf_distribute_strategy_scope():
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = deep_mlp(depth=2)
        before = weights_of(model)
        history = warmup(model, num_classes=NUM_CLASSES, steps=5, seed=0, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, weights_of(model)))


def test_freeze_warms_up_only_the_head_and_restores_every_trainable_flag():
    backbone = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16), keras.layers.BatchNormalization(),
         keras.layers.ReLU()], name="backbone")
    backbone.layers[0].trainable = False  # the user's own choice, kept
    head = keras.layers.Dense(4, name="head")
    model = keras.Sequential([keras.Input((8,)), backbone, head])
    flags = [layer.trainable for layer in [model, backbone, *backbone.layers, head]]
    before_backbone = [np.array(w) for w in backbone.weights]
    before_head = np.array(head.kernel)
    warmup(model, num_classes=4, steps=20, seed=0, verbose=0, learning_rate=1e-2, freeze=backbone)
    for got, expected in zip(backbone.weights, before_backbone):
        np.testing.assert_array_equal(np.array(got), expected)  # BatchNorm statistics included
    assert not np.allclose(np.array(head.kernel), before_head)
    assert [layer.trainable for layer in [model, backbone, *backbone.layers, head]] == flags
    with pytest.raises(ValueError, match="does not have"):
        warmup(model, num_classes=4, steps=2, verbose=0, freeze="encoder")
    with pytest.raises(ValueError, match="no trainable weights"):
        warmup(model, num_classes=4, steps=2, verbose=0, freeze=[backbone, head])
    assert [layer.trainable for layer in [model, backbone, *backbone.layers, head]] == flags
