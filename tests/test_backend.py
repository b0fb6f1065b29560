"""The per-backend code: input gradients against NumPy, evaluation datasets."""

import keras
import numpy as np
import pytest

from keras_noisewarm import backend


def test_input_gradient_of_a_weighted_square_is_twice_weight_times_input():
    weights = np.array([1.0, -2.0, 0.5], dtype="float32")
    inputs = np.array([[3.0, 1.0, -4.0]], dtype="float32")
    gradient = backend.input_gradient(
        lambda x: keras.ops.sum(keras.ops.multiply(weights, x**2)), inputs
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gradient), 2 * weights * inputs)


def _tiny_tanh_model():
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(4, activation="tanh"), keras.layers.Dense(2)]
    )
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_input_gradient_through_a_model_matches_the_chain_rule_in_numpy():
    model = _tiny_tanh_model()
    kernel_1, bias_1, kernel_2, _ = model.get_weights()
    inputs = np.random.default_rng(1).normal(size=(5, 3)).astype("float32")

    gradient = backend.input_gradient(
        lambda x: keras.ops.sum(model(x, training=False)[:, 0]), inputs
    )

    hidden = np.tanh(inputs @ kernel_1 + bias_1)
    expected = ((1 - hidden**2) * kernel_2[:, 0]) @ kernel_1.T
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(gradient), expected, rtol=1e-5, atol=1e-6
    )


def test_gradient_of_a_batch_sum_holds_each_example_own_gradient_in_inference_mode():
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(2),
        ]
    )
    inputs = np.random.default_rng(2).normal(size=(6, 3)).astype("float32")

    def loss(x):
        return keras.ops.sum(model(x, training=False) ** 2)

    batch_gradient = keras.ops.convert_to_numpy(backend.input_gradient(loss, inputs))
    for index in range(len(inputs)):
        own = backend.input_gradient(loss, inputs[index : index + 1])
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(own)[0], batch_gradient[index], rtol=1e-5, atol=1e-6
        )


def test_input_gradient_keeps_shape_and_dtype_of_the_inputs():
    inputs = np.ones((2, 3, 4), dtype="float32")
    gradient = backend.input_gradient(lambda x: keras.ops.sum(x), inputs)
    assert tuple(gradient.shape) == (2, 3, 4)
    assert keras.backend.standardize_dtype(gradient.dtype) == "float32"


def test_input_gradient_rejects_non_scalar_functions_and_integer_inputs():
    with pytest.raises(ValueError, match="scalar"):
        backend.input_gradient(lambda x: x * 2, np.ones((2,), "float32"))
    with pytest.raises(ValueError, match="floating"):
        backend.input_gradient(lambda x: keras.ops.sum(x), np.ones((2,), "int32"))


def test_evaluation_dataset_is_built_under_tensorflow_only_and_keeps_every_row():
    inputs = np.arange(10 * 3, dtype="float32").reshape(10, 3)
    labels = np.arange(10) % 2
    weights = np.linspace(0.5, 1.0, 10).astype("float32")

    dataset = backend.reusable_evaluation_data(inputs, labels, weights, batch_size=4)

    if keras.backend.backend() != "tensorflow":
        assert dataset is None
        return
    batches = list(dataset.as_numpy_iterator())
    assert [len(batch[0]) for batch in batches] == [4, 4, 2]
    for got, expected in zip(zip(*batches), (inputs, labels, weights)):
        np.testing.assert_array_equal(np.concatenate(got), expected)


def test_evaluation_data_other_than_numpy_arrays_is_left_to_evaluate():
    inputs = np.zeros((4, 3), "float32")
    assert backend.reusable_evaluation_data([inputs, inputs], np.zeros(4), None, 2) is None
    assert backend.reusable_evaluation_data(inputs, None, None, 2) is None
