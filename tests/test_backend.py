"""The per-backend code: input gradients against NumPy, evaluation datasets,
top labels against NumPy's argmax, compiling repeated eager calls."""

import itertools

import keras
import numpy as np
import pytest

from keras_noisewarm import backend
from keras_noisewarm.backend import reductions


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


def test_prediction_dataset_without_labels_holds_the_inputs_alone():
    inputs = np.arange(10 * 3, dtype="float32").reshape(10, 3)

    dataset = backend.reusable_evaluation_data(inputs, None, None, batch_size=4)

    if keras.backend.backend() != "tensorflow":
        assert dataset is None
        return
    batches = list(dataset.as_numpy_iterator())
    assert [batch.shape for batch in batches] == [(4, 3), (4, 3), (2, 3)]
    np.testing.assert_array_equal(np.concatenate(batches), inputs)


def tied_probabilities(seed, num_rows, num_classes):
    """Rows with ties at the maximum, uniform rows, zeros, and near-ties."""
    rng = np.random.default_rng(seed)
    # Small integers tie often, at the maximum as elsewhere.
    probabilities = rng.integers(0, 3, size=(num_rows, num_classes)).astype("float32")
    probabilities[0] = 1.0
    probabilities[1] = 0.0
    probabilities[1, -1] = 1.0
    probabilities[2] = 0.0
    probabilities[2, [0, -1]] = 1.0
    probabilities[3:6] = 0.0
    probabilities[3:6, 1] = 1.0
    probabilities[probabilities.sum(axis=-1) == 0] = 1.0  # probabilities sum to one
    probabilities /= probabilities.sum(axis=-1, keepdims=True)
    # A runner-up one float32 step below the maximum, before and after it.
    maximum = probabilities[6].max()
    probabilities[6, 0] = np.nextafter(maximum, np.float32(0.0))
    probabilities[7, :] = 0.25 / num_classes
    probabilities[7, -1] = 0.5
    probabilities[7, 0] = np.nextafter(np.float32(0.5), np.float32(0.0))
    return probabilities


COMPILES = keras.backend.backend() in ("tensorflow", "jax")
_keys = itertools.count()


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("num_classes", [2, 3, 10, 31, 32, 100, 1000])
def test_top_label_is_the_maximum_and_the_first_index_of_it_like_numpy_argmax(num_classes, compiled):
    probabilities = tied_probabilities(seed=num_classes, num_rows=500, num_classes=num_classes)
    assert np.any((probabilities == probabilities.max(axis=-1, keepdims=True)).sum(axis=-1) > 1)
    traced = []

    def top_label(probabilities):
        traced.append(not backend.values_are_concrete(probabilities))
        return backend.top_label(probabilities)

    if compiled:
        # TensorFlow picks other ops when traced (XLA) than eagerly.
        top_label = backend.compile_repeated_calls(("test top_label", num_classes), top_label)
        top_label(keras.ops.convert_to_tensor(probabilities))
    confidences, predicted = top_label(keras.ops.convert_to_tensor(probabilities))
    assert traced[-1] == (compiled and COMPILES)
    predicted = keras.ops.convert_to_numpy(predicted)
    assert predicted.dtype == np.int32
    np.testing.assert_array_equal(predicted, probabilities.argmax(axis=-1))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(confidences), probabilities.max(axis=-1))


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("num_classes", [2, 10, 1000])
def test_detected_top_label_reads_logits_and_probabilities_like_numpy(num_classes, compiled):
    rng = np.random.default_rng(num_classes)
    logits = (3 * rng.normal(size=(300, num_classes))).astype("float32")
    logits[:50, 0] = logits[:50, 1] = logits[:50].max(axis=-1)  # ties: the first index wins
    probabilities = tied_probabilities(seed=num_classes, num_rows=300, num_classes=num_classes)
    traced = []

    def read(outputs):
        traced.append(not backend.values_are_concrete(outputs))
        in_unit_interval = keras.ops.logical_and(outputs >= 0.0, outputs <= 1.0)
        return backend.detected_top_label(outputs, keras.ops.logical_not(
            keras.ops.all(in_unit_interval)))

    if compiled:
        read = backend.compile_repeated_calls(("test detected_top_label", num_classes), read)
        read(keras.ops.convert_to_tensor(logits))
    shifted = np.exp(logits.astype(np.float64) - logits.max(axis=-1, keepdims=True))
    softmax = shifted / shifted.sum(axis=-1, keepdims=True)
    for outputs, expected in ((logits, softmax), (probabilities, probabilities)):
        confidences, predicted = read(keras.ops.convert_to_tensor(outputs))
        assert traced[-1] == (compiled and COMPILES)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(predicted),
                                      expected.argmax(axis=-1))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(confidences),
                                   expected.max(axis=-1), rtol=1e-6)


@pytest.mark.parametrize("num_classes", [2, 32, 1000])
def test_arithmetic_first_maximum_index_equals_argmax_without_comparisons(num_classes):
    # The comparison-free index that the JAX backend uses from 32 classes
    # on, checked in NumPy on every backend, near-ties at one float32 step
    # included.
    probabilities = tied_probabilities(seed=7, num_rows=500, num_classes=num_classes)
    rng = np.random.default_rng(8)
    steps = rng.integers(1, 3, size=(100, 1)).astype("float32")
    maxima = rng.uniform(1.0 / num_classes, 1.0, size=(100, 1)).astype("float32")
    near_ties = np.nextafter(maxima, np.float32(0.0)) * np.ones((1, num_classes), "float32")
    near_ties[:, -1:] = maxima  # the maximum is last; every other entry is a step below
    near_ties[:50] = np.where(steps[:50] > 1, near_ties[:50], maxima[:50])  # some exact ties too
    for rows in (probabilities, near_ties):
        maximum = rows.max(axis=-1, keepdims=True)
        index = reductions._first_maximum_index(np, rows, maximum)
        np.testing.assert_array_equal(index, rows.argmax(axis=-1))


def test_bin_sums_add_each_row_to_its_bin_like_numpy():
    rng = np.random.default_rng(9)
    values = rng.normal(size=(1000, 3)).astype("float32")
    bins = rng.integers(0, 15, size=1000).astype("int32")
    bins[bins == 4] = 5  # an empty bin
    columns = [keras.ops.convert_to_tensor(column) for column in values.T]
    sums = backend.bin_sums(columns, keras.ops.convert_to_tensor(bins), 15)
    expected = np.stack([np.bincount(bins, weights=column, minlength=15) for column in values.T], axis=-1)
    sums = keras.ops.convert_to_numpy(sums)
    assert sums.dtype == np.float32 and sums.shape == (15, 3)
    np.testing.assert_allclose(sums, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(sums[4], 0.0)


# ----------------------------------------------------------------------------
# compile_repeated_calls


def recording_sum(calls):
    """A pure function that notes, when Python runs it, whether it is traced."""

    def total(values, weights):
        calls.append("traced" if not backend.values_are_concrete(values) else "eager")
        if weights is not None:
            values = values * weights
        return (keras.ops.sum(values),)

    return total


def test_repeated_calls_run_eagerly_once_then_compiled_from_the_second_call():
    calls = []
    total = backend.compile_repeated_calls(("test", next(_keys)), recording_sum(calls))
    values = keras.ops.convert_to_tensor(np.arange(6, dtype="float32"))

    results = [float(total(values, None)[0]) for _ in range(4)]

    assert results == [15.0] * 4
    # Compiled: traced once on the second call, then Python is not run again.
    expected = ["eager", "traced"] if COMPILES else ["eager"] * 4
    assert calls == expected


def test_each_input_signature_is_compiled_on_its_own_second_call():
    calls = []
    total = backend.compile_repeated_calls(("test", next(_keys)), recording_sum(calls))
    short = keras.ops.convert_to_tensor(np.ones(3, "float32"))
    long = keras.ops.convert_to_tensor(np.ones(5, "float32"))
    weights = keras.ops.convert_to_tensor(np.full(5, 2.0, "float32"))

    results = [
        float(total(*arguments)[0])
        for arguments in [(short, None), (long, None), (long, weights), (short, None), (long, weights)]
    ]

    assert results == [3.0, 5.0, 10.0, 3.0, 10.0]
    if COMPILES:
        assert calls == ["eager", "eager", "eager", "traced", "traced"]
    else:
        assert calls == ["eager"] * 5


def test_calls_sharing_a_key_share_one_compiled_function():
    key = ("test", next(_keys))
    first_calls, second_calls = [], []
    first = backend.compile_repeated_calls(key, recording_sum(first_calls))
    second = backend.compile_repeated_calls(key, recording_sum(second_calls))
    values = keras.ops.convert_to_tensor(np.ones(4, "float32"))

    first(values, None)
    second(values, None)
    second(values, None)

    assert first is second
    # The function given first is the one that runs.
    assert second_calls == []
    assert first_calls == (["eager", "traced"] if COMPILES else ["eager"] * 3)


def test_signatures_past_the_bound_keep_running_eagerly(monkeypatch):
    monkeypatch.setattr(backend.compilation, "MAX_COMPILED_SIGNATURES", 1)
    calls = []
    total = backend.compile_repeated_calls(("test", next(_keys)), recording_sum(calls))
    short = keras.ops.convert_to_tensor(np.ones(3, "float32"))
    long = keras.ops.convert_to_tensor(np.ones(5, "float32"))

    for values in (short, short, long, long, long):
        total(values, None)

    if COMPILES:
        assert calls == ["eager", "traced", "eager", "eager", "eager"]
    else:
        assert calls == ["eager"] * 5


def test_calls_inside_a_compiled_function_are_left_to_it():
    inner_calls = []
    inner = backend.compile_repeated_calls(("test", next(_keys)), recording_sum(inner_calls))
    outer = backend.compile_repeated_calls(("test", next(_keys)), lambda values: inner(values, None))
    values = keras.ops.convert_to_tensor(np.ones(4, "float32"))

    outer(values)
    outer(values)  # traced under TensorFlow and JAX: inner runs as part of it
    inner(values, None)  # inner's own second eager call

    if COMPILES:
        assert inner_calls == ["eager", "traced", "traced"]
    else:
        assert inner_calls == ["eager"] * 3
