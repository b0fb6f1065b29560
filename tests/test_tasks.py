"""Every task type is warmed up to its uninformative prior, then trains normally."""

import keras
import numpy as np
import pytest

import keras_noisewarm
from keras_noisewarm import noise
from keras_noisewarm import tasks
from keras_noisewarm.inspection import inspect_model

FAST = dict(steps=150, batch_size=64, learning_rate=1e-2, seed=0, verbose=0)


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]


def unchanged_after_error(model, **kwargs):
    before = weights_of(model)
    with pytest.raises(ValueError) as error:
        keras_noisewarm.warmup(model, **dict(dict(steps=3, verbose=0), **kwargs))
    for a, b in zip(before, weights_of(model)):
        np.testing.assert_array_equal(a, b)
    return str(error.value)


def predictions_on_noise(model, spec, num_examples=512, seed=7):
    generator = keras.random.SeedGenerator(seed)
    inputs = [
        family.step_sample((num_examples,) + tuple(shape), generator, dtype)
        for family, shape, dtype in zip(
            spec.families,
            spec.input_shape.values() if isinstance(spec.input_shape, dict) else
            (spec.input_shape if isinstance(spec.input_shape[0], tuple) else [spec.input_shape]),
            spec.input_dtypes,
        )
    ]
    if isinstance(spec.input_shape, dict):
        inputs = dict(zip(spec.input_shape, inputs))
    elif len(inputs) == 1:
        inputs = inputs[0]
    return model.predict(inputs, batch_size=256, verbose=0)


def mlp(outputs, activation=None, inputs=6):
    return keras.Sequential([
        keras.Input((inputs,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(outputs, activation=activation,
                           bias_initializer=keras.initializers.Constant(3.0)),
    ])


def test_binary_sigmoid_goes_to_one_half_or_to_the_given_prior():
    for prior in (0.5, 0.2):
        model = mlp(1, "sigmoid")
        spec = inspect_model(model)
        assert isinstance(spec.task, tasks.Binary) and spec.from_logits is False
        before = predictions_on_noise(model, spec).mean()
        keras_noisewarm.warmup(model, task=tasks.Binary(prior=prior), **FAST)
        after = predictions_on_noise(model, spec)
        assert before > 0.8  # the bias of 3 starts it far from any prior
        assert after.mean() == pytest.approx(prior, abs=0.05)


def test_multi_label_sigmoids_each_go_to_their_prior():
    model = mlp(5, "sigmoid")
    spec = inspect_model(model)
    assert isinstance(spec.task, tasks.MultiLabel) and spec.task.num_labels == 5
    priors = [0.1, 0.3, 0.5, 0.7, 0.9]
    keras_noisewarm.warmup(model, task=tasks.MultiLabel(5, prior=priors), **FAST)
    np.testing.assert_allclose(predictions_on_noise(model, spec).mean(axis=0), priors, atol=0.06)


def test_multi_label_output_is_not_warmed_up_as_a_softmax_classifier():
    message = unchanged_after_error(mlp(5, "sigmoid"), num_classes=5)
    assert "multi-label" in message and "task='multi_label'" in message


def plain_fit_fails(model, x, y, loss):
    """Whether Keras itself cannot train `model` on this backend."""
    twin = keras.models.clone_model(model)
    twin.compile("sgd", loss)
    try:
        twin.fit(x, y, epochs=1, verbose=0)
    except RuntimeError as error:
        return str(error)
    return None


def test_segmentation_head_goes_to_chance_at_every_pixel():
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(4, 1, activation="softmax"),
    ])
    # Under torch, Keras 3.15's backward pass through a per-pixel softmax fails
    # in plain `fit` ("grad_input must be contiguous"); nothing to warm up then.
    failure = plain_fit_fails(model, np.zeros((4, 8, 8, 3), "float32"), np.zeros((4, 8, 8), "int32"),
                              "sparse_categorical_crossentropy")
    if failure:
        pytest.skip(f"plain Keras fit fails on this backend too: {failure}")
    spec = inspect_model(model)
    assert spec.target_shapes == ((8, 8),) and spec.num_classes == 4
    keras_noisewarm.warmup(model, **FAST)
    probabilities = predictions_on_noise(model, spec, num_examples=128)
    assert probabilities.shape == (128, 8, 8, 4)
    np.testing.assert_allclose(probabilities.mean(axis=(0, 1, 2)), 0.25, atol=0.03)
    assert probabilities.max(axis=-1).mean() < 0.3


def language_model(vocabulary=30, length=12):
    tokens = keras.Input((length,), dtype="int32")
    hidden = keras.layers.Embedding(vocabulary, 16, mask_zero=True)(tokens)
    hidden = keras.layers.Conv1D(32, 3, padding="causal", activation="relu")(hidden)
    return keras.Model(tokens, keras.layers.Dense(vocabulary)(hidden))


def test_language_model_gets_token_noise_and_per_position_targets():
    model = language_model()
    spec = inspect_model(model)
    (family,) = spec.families
    assert isinstance(family, noise.Tokens)
    assert (family.vocabulary_size, family.padding_id) == (30, 0)
    assert spec.target_shapes == ((12,),) and spec.from_logits is True
    keras_noisewarm.warmup(model, **FAST)
    logits = predictions_on_noise(model, spec, num_examples=256)
    probabilities = keras_noisewarm.outputs.probabilities_of(logits, True)
    assert probabilities.max(axis=-1).mean() < 2.5 / 30


def test_regression_mean_head_goes_to_the_target_mean_with_small_spread():
    model = mlp(1)
    model.compile("adam", "mse")
    spec = inspect_model(model)
    assert isinstance(spec.task, tasks.Regression)
    keras_noisewarm.warmup(model, task=tasks.Regression(mean=3.0, std=2.0), **FAST)
    predictions = predictions_on_noise(model, spec)
    assert predictions.mean() == pytest.approx(3.0, abs=0.2)
    assert predictions.std() < 0.5


@keras.saving.register_keras_serializable(package="tests")
def gaussian_nll(y_true, y_pred):
    mean, log_variance = y_pred[..., :1], y_pred[..., 1:]
    return keras.ops.mean(0.5 * (log_variance + (y_true - mean) ** 2 / keras.ops.exp(log_variance)), axis=-1)


def test_mean_and_variance_head_goes_to_the_prior_mean_and_variance_with_its_own_loss():
    model = mlp(2)
    model.compile("adam", gaussian_nll)
    task = tasks.Regression.from_targets(np.random.default_rng(0).normal(5.0, 3.0, 2000), target_shape=(1,))
    keras_noisewarm.warmup(model, task=task, **dict(FAST, steps=300))
    spec = inspect_model(model, task=task)
    assert spec.task.loss() is gaussian_nll  # the compiled loss, not mean squared error
    outputs = predictions_on_noise(model, spec)
    assert outputs[:, 0].mean() == pytest.approx(task.mean, abs=0.3)
    assert np.exp(outputs[:, 1]).mean() == pytest.approx(task.std**2, rel=0.25)


def test_an_uncompiled_single_linear_unit_asks_which_task_it_is():
    message = unchanged_after_error(mlp(1))
    assert "binary logit or a regression" in message and "task=" in message


def test_multi_input_multi_output_model_warms_up_each_output_to_its_own_prior():
    image = keras.Input((6, 6, 1), name="image")
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    features = keras.layers.Concatenate()([
        keras.layers.Flatten()(image),
        keras.layers.Flatten()(keras.layers.Embedding(20, 4)(tokens)),
    ])
    hidden = keras.layers.Dense(32, activation="relu")(features)
    model = keras.Model(
        {"image": image, "tokens": tokens},
        {"kind": keras.layers.Dense(3, activation="softmax", name="kind")(hidden),
         "flag": keras.layers.Dense(1, activation="sigmoid", name="flag")(hidden)},
    )
    spec = inspect_model(model)
    assert [type(task).__name__ for task in spec.tasks] == ["Binary", "Classification"]
    assert isinstance(spec.families[list(spec.input_shape).index("tokens")], noise.Tokens)
    # At FAST's learning rate the last steps' random labels alone move a
    # 3-class mean by up to 0.06; a calmer end keeps it within 0.035 over
    # five seeds on every backend.
    keras_noisewarm.warmup(model, **dict(FAST, steps=300, learning_rate=3e-3))
    predictions = predictions_on_noise(model, spec)
    assert predictions["flag"].mean() == pytest.approx(0.5, abs=0.06)
    np.testing.assert_allclose(predictions["kind"].mean(axis=0), 1 / 3, atol=0.05)
    # And it then trains on data as usual.
    rng = np.random.default_rng(0)
    x = {"image": rng.normal(size=(64, 6, 6, 1)).astype("float32"),
         "tokens": rng.integers(1, 20, size=(64, 5))}
    y = {"kind": rng.integers(0, 3, size=64), "flag": rng.integers(0, 2, size=(64, 1)).astype("float32")}
    model.compile("adam", {"kind": "sparse_categorical_crossentropy", "flag": "binary_crossentropy"})
    history = model.fit(x, y, epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_tasks_of_several_outputs_are_given_by_name():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, {"a": keras.layers.Dense(1)(inputs), "b": keras.layers.Dense(3)(inputs)})
    spec = inspect_model(model, task={"a": tasks.Regression(), "b": "classification"})
    assert [type(task).__name__ for task in spec.tasks] == ["Regression", "Classification"]
    with pytest.raises(ValueError, match="names outputs"):
        inspect_model(model, task={"c": "binary"})


def test_a_target_shape_unlike_the_output_is_refused_before_any_step():
    model = mlp(2)
    model.compile("adam", "mse")
    message = unchanged_after_error(model, task=tasks.Regression(target_shape=(3,)))
    assert "(3,)" in message


def test_noise_that_does_not_fit_the_input_is_refused_before_any_step():
    tokens_model = language_model()
    message = unchanged_after_error(tokens_model, noise=noise.Gaussian())
    assert "Embedding" in message and "Tokens(30)" in message
    codes = keras.Input((4,), dtype="int32")
    model = keras.Model(codes, keras.layers.Dense(3)(keras.layers.Lambda(
        lambda x: keras.ops.cast(x, "float32"))(codes)))
    assert "Tokens(vocabulary_size)" in unchanged_after_error(model, num_classes=3)
    message = unchanged_after_error(mlp(3), noise=noise.Tokens(10, min_length=8, padding_id=0))
    assert "min_length" in message


@pytest.mark.parametrize("task", [
    tasks.Classification(4, one_hot=True), tasks.Binary(prior=0.3),
    tasks.MultiLabel(3, prior=[0.2, 0.5, 0.7]), tasks.Regression(mean=[1.0, 2.0], std=0.5, target_shape=(2,)),
])
def test_task_configs_round_trip(task):
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(task))
    assert restored == task and restored.get_config() == task.get_config()
