"""Temperature and vector scaling: fitting, the layers, saving and exporting."""

import warnings

import keras
import numpy as np
import pytest

import local_data

from keras_noisewarm import posthoc
from keras_noisewarm import datasets

NUM_CLASSES = 10


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _nll(logits, labels):
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_probabilities[np.arange(len(labels)), labels].mean()


def _ece(logits, labels, num_bins=15):
    """Expected calibration error: equal-width confidence bins, mean confidence per bin."""
    probabilities = _softmax(logits)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    bins = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    error = 0.0
    for index in range(num_bins):
        members = bins == index
        if members.any():
            error += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return error


def _calibrated_logits_and_labels(num_examples, seed):
    """Logits and labels drawn from softmax(logits): calibrated by construction."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, size=(num_examples, NUM_CLASSES))
    cumulative = _softmax(logits).cumsum(axis=1)
    labels = (rng.random((num_examples, 1)) > cumulative).sum(axis=1)
    return logits, np.minimum(labels, NUM_CLASSES - 1)


@pytest.fixture(scope="module")
def overconfident_mnist_logits():
    """Test-set logits of an MLP overfit on 2,000 MNIST images, and the labels."""
    path = local_data.local_copy("mnist")
    if path is None:
        pytest.skip("no local copy of MNIST (shared/data/mnist or $KERAS_NOISEWARM_DATA)")
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = datasets.load_mnist(path)
    x_train = x_train[:2000].reshape(-1, 784).astype("float32") / 255.0
    x_test = x_test.reshape(-1, 784).astype("float32") / 255.0
    model = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(NUM_CLASSES),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train[:2000], epochs=8, batch_size=125, verbose=0)
    logits = model.predict(x_test, batch_size=1000, verbose=0).astype(np.float64)
    return logits, y_test


@pytest.mark.parametrize("true_temperature", [2.5, 0.5])
def test_fit_temperature_recovers_the_sharpening_of_a_calibrated_model(true_temperature):
    logits, labels = _calibrated_logits_and_labels(20_000, seed=0)
    # Dividing calibrated logits by T gives logits that need T to be undone.
    fitted = posthoc.fit_temperature(logits / true_temperature, labels)
    assert fitted == pytest.approx(1.0 / true_temperature, rel=0.05)
    fitted = posthoc.fit_temperature(logits * true_temperature, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)


def test_fit_temperature_on_probabilities_matches_the_fit_on_logits():
    logits, labels = _calibrated_logits_and_labels(5_000, seed=1)
    sharpened = 3.0 * logits
    from_logits = posthoc.fit_temperature(sharpened, labels)
    from_probabilities = posthoc.fit_temperature(
        _softmax(sharpened), labels, from_logits=False
    )
    assert from_probabilities == pytest.approx(from_logits, rel=1e-3)


def test_fit_temperature_accepts_one_hot_labels():
    logits, labels = _calibrated_logits_and_labels(2_000, seed=2)
    one_hot = np.eye(NUM_CLASSES)[labels]
    assert posthoc.fit_temperature(2 * logits, one_hot) == pytest.approx(
        posthoc.fit_temperature(2 * logits, labels)
    )


def test_fit_temperature_warns_when_every_held_out_prediction_is_right():
    logits = np.array([[5.0, 0.0], [0.0, 5.0], [4.0, 1.0]])
    # Zero NLL is only reached as T -> 0: the optimum lies on the bound.
    with pytest.warns(RuntimeWarning, match="every held-out prediction is right"):
        posthoc.fit_temperature(logits, [0, 1, 0])


def test_fit_temperature_warns_when_the_optimum_lies_beyond_the_search_bound():
    # Right 3 times in 4 with a logit gap of only 0.001: the best T makes
    # sigmoid(0.001 / T) = 3/4, that is T = 0.001 / ln 3, below the bound 0.01.
    logits = np.array([[0.001, 0.0]] * 4)
    with pytest.warns(RuntimeWarning, match="search bound"):
        temperature = posthoc.fit_temperature(logits, [0, 0, 0, 1], from_logits=True)
    assert temperature == pytest.approx(0.01)


def test_fit_temperature_does_not_warn_on_a_well_posed_fit():
    logits = np.array([[4.0, 0.0]] * 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        temperature = posthoc.fit_temperature(logits, [0, 0, 0, 1])
    assert temperature == pytest.approx(4.0 / np.log(3.0), rel=1e-4)


def test_fit_temperature_rejects_bad_outputs_and_labels():
    logits, labels = _calibrated_logits_and_labels(10, seed=3)
    with pytest.raises(ValueError, match="labels"):
        posthoc.fit_temperature(logits, labels[:5])
    with pytest.raises(ValueError, match=r"lie in \[0, 10\)"):
        posthoc.fit_temperature(logits, labels + 10)
    with pytest.raises(ValueError, match="not probabilities"):
        posthoc.fit_temperature(logits, labels, from_logits=False)
    with pytest.raises(ValueError, match="NaN"):
        posthoc.fit_temperature(np.full((10, 10), np.nan), labels)


def test_temperature_scaling_lowers_nll_and_ece_on_a_held_out_split(
    overconfident_mnist_logits,
):
    logits, labels = overconfident_mnist_logits
    fit_logits, fit_labels = logits[:5000], labels[:5000]
    held_out_logits, held_out_labels = logits[5000:], labels[5000:]

    layer = posthoc.TemperatureScaling().fit(fit_logits, fit_labels)
    calibrated = keras.ops.convert_to_numpy(layer(held_out_logits.astype("float32")))
    calibrated = calibrated.astype(np.float64)

    assert layer.temperature > 1.0  # the overfit model is overconfident
    assert _nll(calibrated, held_out_labels) < _nll(held_out_logits, held_out_labels)
    assert _ece(calibrated, held_out_labels) < _ece(held_out_logits, held_out_labels)
    # Dividing by T > 0 keeps every prediction.
    np.testing.assert_array_equal(calibrated.argmax(axis=1), held_out_logits.argmax(axis=1))


def test_vector_scaling_lowers_nll_on_a_held_out_split(overconfident_mnist_logits):
    logits, labels = overconfident_mnist_logits
    layer = posthoc.VectorScaling().fit(logits[:5000], labels[:5000])
    calibrated = keras.ops.convert_to_numpy(layer(logits[5000:].astype("float32")))
    assert _nll(calibrated.astype(np.float64), labels[5000:]) < _nll(
        logits[5000:], labels[5000:]
    )


def test_vector_scaling_recovers_known_class_scales_and_biases():
    logits, _ = _calibrated_logits_and_labels(50_000, seed=4)
    rng = np.random.default_rng(5)
    true_scale = rng.uniform(0.5, 2.0, NUM_CLASSES)
    true_bias = rng.normal(0.0, 0.5, NUM_CLASSES)
    true_bias -= true_bias.mean()  # softmax ignores a shared shift of the biases
    cumulative = _softmax(logits * true_scale + true_bias).cumsum(axis=1)
    labels = np.minimum((rng.random((len(logits), 1)) > cumulative).sum(axis=1), 9)

    scale, bias = posthoc.fit_vector_scaling(logits, labels)

    np.testing.assert_allclose(scale, true_scale, rtol=0.1)
    np.testing.assert_allclose(bias - bias.mean(), true_bias, atol=0.1)


def test_temperature_scaling_layer_on_probabilities_returns_calibrated_probabilities():
    logits, labels = _calibrated_logits_and_labels(2_000, seed=6)
    probabilities = _softmax(2.0 * logits).astype("float32")
    layer = posthoc.TemperatureScaling(from_logits=False).fit(probabilities, labels)
    outputs = keras.ops.convert_to_numpy(layer(probabilities))
    expected = _softmax(2.0 * logits / layer.temperature)
    np.testing.assert_allclose(outputs, expected, atol=1e-5)


def test_fitted_state_is_non_trainable_and_positive_by_construction():
    layer = posthoc.TemperatureScaling(initial_temperature=2.0)
    layer.build((None, NUM_CLASSES))
    assert layer.trainable_weights == []
    assert [w.name for w in layer.non_trainable_weights] == ["log_temperature", "fitted"]
    assert layer.temperature == pytest.approx(2.0)
    with pytest.raises(ValueError, match="positive"):
        posthoc.TemperatureScaling(initial_temperature=0.0).build((None, 3))


def _calibrated_model():
    model_input = keras.Input((6,))
    model_logits = keras.layers.Dense(NUM_CLASSES)(model_input)
    inputs = np.random.default_rng(7).normal(size=(200, 6)).astype("float32")
    logits = keras.Model(model_input, model_logits).predict(inputs, verbose=0)
    # Labels drawn from softmax(logits / 2): the fitted temperature is about 2.
    cumulative = _softmax(logits.astype(np.float64) / 2.0).cumsum(axis=1)
    labels = np.minimum(
        (np.random.default_rng(8).random((200, 1)) > cumulative).sum(axis=1), 9
    )
    scaling = posthoc.TemperatureScaling(name="temperature_scaling").fit(logits, labels)
    vector = posthoc.VectorScaling(name="vector_scaling").fit(logits, labels)
    calibrated = keras.Model(model_input, [scaling(model_logits), vector(model_logits)])
    return calibrated, inputs


def test_calibrated_model_keeps_its_fitted_state_through_keras_save_and_load(tmp_path):
    calibrated, inputs = _calibrated_model()
    path = str(tmp_path / "calibrated.keras")
    calibrated.save(path)
    reloaded = keras.saving.load_model(path)

    original_temperature = calibrated.get_layer("temperature_scaling").temperature
    assert original_temperature != pytest.approx(1.0, abs=0.05)
    assert reloaded.get_layer("temperature_scaling").temperature == pytest.approx(
        original_temperature
    )
    before_and_after = zip(
        calibrated.predict(inputs, verbose=0), reloaded.predict(inputs, verbose=0)
    )
    for before, after in before_and_after:
        np.testing.assert_allclose(after, before, rtol=1e-6)


@pytest.mark.skipif(
    keras.backend.backend() == "torch",
    reason="Keras 3.15 exports from TensorFlow and JAX only "
    "(from torch, reload the .keras file under TensorFlow and export there)",
)
def test_calibrated_model_exports_with_its_fitted_state(tmp_path):
    import tensorflow as tf

    calibrated, inputs = _calibrated_model()
    path = str(tmp_path / "exported")
    calibrated.export(path, format="tf_saved_model", verbose=False)
    exported = tf.saved_model.load(path)
    outputs = exported.serve(tf.constant(inputs))
    for expected, actual in zip(calibrated.predict(inputs, verbose=0), outputs):
        np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-5, atol=1e-6)
