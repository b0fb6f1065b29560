"""Feedback alignment: the layer's gradients, conversion, diagnostics, monitor."""

import keras
import numpy as np
import pytest

import keras_noisewarm
from keras_noisewarm import backend
from keras_noisewarm.callbacks import FeedbackAlignmentMonitor
from keras_noisewarm.feedback_alignment import FeedbackAlignmentConv2D
from keras_noisewarm.feedback_alignment import FeedbackAlignmentDense
from keras_noisewarm.feedback_alignment import angle_between
from keras_noisewarm.feedback_alignment import effective_rank
from keras_noisewarm.feedback_alignment import feedback_is_used
from keras_noisewarm.feedback_alignment import feedback_layers
from keras_noisewarm.feedback_alignment import to_backpropagation
from keras_noisewarm.feedback_alignment import to_feedback_alignment
from keras_noisewarm.feedback_alignment import update_angles
from keras_noisewarm.feedback_alignment import weight_effective_ranks
from keras_noisewarm.feedback_alignment import weight_feedback_angles

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _mlp(inputs=6, hidden=8, classes=3, batch_norm=False):
    layers = [keras.Input((inputs,)), keras.layers.Dense(hidden, activation="relu", name="hidden")]
    if batch_norm:
        layers.append(keras.layers.BatchNormalization(name="norm"))
    layers.append(keras.layers.Dense(classes, name="output"))
    return keras.Sequential(layers, name="mlp")


def _data(count=32, inputs=6, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((count, inputs)).astype("float32"),
            rng.integers(0, classes, count).astype("int64"))


def _numpy(value):
    return np.asarray(keras.ops.convert_to_numpy(value), dtype="float64")


def test_gradients_are_feedback_for_the_input_and_usual_for_the_weights():
    layer = FeedbackAlignmentDense(4, name="fa")
    x = np.random.default_rng(0).standard_normal((5, 3)).astype("float32")
    layer.build(x.shape)
    upstream = np.random.default_rng(1).standard_normal((5, 4)).astype("float32")
    kernel, bias, feedback = (_numpy(w) for w in (layer.kernel, layer.bias, layer.feedback))

    def loss(values):
        inputs, kernel_value, bias_value = values
        outputs, _ = layer.stateless_call([kernel_value, bias_value], [layer.feedback], inputs)
        return keras.ops.sum(keras.ops.multiply(outputs, upstream))

    grad_x, grad_kernel, grad_bias = (_numpy(g) for g in backend.gradients(
        loss, [x, layer.kernel, layer.bias]))
    np.testing.assert_allclose(grad_x, upstream @ feedback.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_kernel, x.astype("float64").T @ upstream, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grad_bias, upstream.sum(axis=0), rtol=1e-5, atol=1e-6)
    # Backpropagation would have sent kernel^T: the two differ.
    assert not np.allclose(grad_x, upstream @ kernel.T, atol=1e-3)
    np.testing.assert_allclose(_numpy(layer(x)), x @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_gradients_of_inputs_with_leading_axes():
    layer = FeedbackAlignmentDense(2, use_bias=False)
    x = np.random.default_rng(2).standard_normal((2, 3, 4)).astype("float32")
    layer.build(x.shape)
    upstream = np.random.default_rng(3).standard_normal((2, 3, 2)).astype("float32")
    feedback = _numpy(layer.feedback)

    def loss(values):
        outputs, _ = layer.stateless_call(values[1:], [layer.feedback], values[0])
        return keras.ops.sum(keras.ops.multiply(outputs, upstream))

    grad_x, grad_kernel = (_numpy(g) for g in backend.gradients(loss, [x, layer.kernel]))
    np.testing.assert_allclose(grad_x, upstream @ feedback.T, rtol=1e-5, atol=1e-6)
    expected = x.reshape(-1, 4).astype("float64").T @ upstream.reshape(-1, 2)
    np.testing.assert_allclose(grad_kernel, expected, rtol=1e-5, atol=1e-6)


# torch compiles with torch.compile under jit_compile=True, which takes ~20 s
# on these CPUs; Keras's torch default is eager, tested by the False case.
@pytest.mark.parametrize("jit_compile", [
    False,
    pytest.param(True, marks=pytest.mark.skipif(
        keras.backend.backend() == "torch", reason="torch.compile is slow here; eager is the default")),
])
def test_fit_trains_the_weights_and_never_the_feedback(jit_compile):
    model = to_feedback_alignment(_mlp(), seed=0)
    model.compile(keras.optimizers.SGD(0.1), LOSS, jit_compile=jit_compile)
    feedback = [_numpy(layer.feedback) for layer in feedback_layers(model)]
    kernels = [_numpy(layer.kernel) for layer in feedback_layers(model)]
    x, y = _data(64)
    history = model.fit(x, y, epochs=3, batch_size=32, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    for layer, before, kernel in zip(feedback_layers(model), feedback, kernels):
        np.testing.assert_array_equal(_numpy(layer.feedback), before)
        assert np.abs(_numpy(layer.kernel) - kernel).max() > 1e-3
        assert not layer.feedback.trainable


def test_one_step_matches_numpy_feedback_alignment():
    """One SGD step on a two-layer net: hidden delta through B, not W^T."""
    model = to_feedback_alignment(_mlp(), seed=0)
    model.compile(keras.optimizers.SGD(1.0), LOSS)
    hidden, output = feedback_layers(model)
    w1, b1, w2, b2 = (_numpy(v) for v in (hidden.kernel, hidden.bias, output.kernel, output.bias))
    feedback = _numpy(output.feedback)
    x, y = _data(8)
    model.train_on_batch(x, y)
    pre = x @ w1 + b1
    h = np.maximum(pre, 0)
    logits = h @ w2 + b2
    probabilities = np.exp(logits - logits.max(1, keepdims=True))
    probabilities /= probabilities.sum(1, keepdims=True)
    delta_out = (probabilities - np.eye(3)[y]) / len(x)
    delta_hidden = (delta_out @ feedback.T) * (pre > 0)
    np.testing.assert_allclose(_numpy(output.kernel), w2 - h.T @ delta_out, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_numpy(hidden.kernel), w1 - x.T @ delta_hidden, rtol=1e-4, atol=1e-5)


def test_save_and_load_restore_the_feedback_exactly(tmp_path):
    model = to_feedback_alignment(_mlp(), seed=3)
    path = tmp_path / "fa.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [FeedbackAlignmentDense] * 2
    for original, restored in zip(feedback_layers(model), feedback_layers(loaded)):
        np.testing.assert_array_equal(_numpy(restored.feedback), _numpy(original.feedback))
        np.testing.assert_array_equal(_numpy(restored.kernel), _numpy(original.kernel))
    x, _ = _data(4)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_layer_config_round_trip_keeps_every_argument():
    layer = FeedbackAlignmentDense(
        5, activation="tanh", use_bias=False, kernel_initializer="he_normal",
        feedback_initializer=keras.initializers.RandomUniform(-1, 1, seed=2),
        kernel_regularizer="l2", name="fa")
    clone = FeedbackAlignmentDense.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    assert isinstance(clone.feedback_initializer, keras.initializers.RandomUniform)


def test_default_feedback_is_untruncated_normal_with_he_scale():
    layer = FeedbackAlignmentDense(400)
    layer.build((None, 200))
    feedback = _numpy(layer.feedback)
    assert abs(feedback.std() - np.sqrt(2 / 200)) < 0.01 * np.sqrt(2 / 200)
    # Truncation at two standard deviations would leave none beyond.
    assert np.mean(np.abs(feedback) > 2 * np.sqrt(2 / 200)) > 0.04


def test_conversion_keeps_the_outputs_and_copies_the_weights():
    model = _mlp(batch_norm=True)
    x, y = _data(64)
    model.compile("adam", LOSS)
    model.fit(x, y, epochs=1, verbose=0)  # moves the BatchNorm statistics off their start
    twin = to_feedback_alignment(model, seed=1)
    assert [type(layer).__name__ for layer in twin.layers] == [
        "FeedbackAlignmentDense", "BatchNormalization", "FeedbackAlignmentDense"]
    np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))
    back = to_backpropagation(twin)
    assert [type(layer).__name__ for layer in back.layers] == ["Dense", "BatchNormalization", "Dense"]
    np.testing.assert_array_equal(back.predict(x, verbose=0), model.predict(x, verbose=0))
    # Training the twin leaves the original alone.
    before = _numpy(model.layers[0].kernel)
    twin.compile("adam", LOSS)
    twin.fit(x, y, epochs=1, verbose=0)
    np.testing.assert_array_equal(_numpy(model.layers[0].kernel), before)


def test_conversion_of_a_functional_model_with_a_nested_block():
    block = keras.Sequential([keras.Input((8,)), keras.layers.Dense(8, activation="relu")],
                             name="block")
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(3)(block(keras.layers.Dense(8, activation="relu")(inputs)))
    model = keras.Model(inputs, outputs)
    twin = to_feedback_alignment(model, seed=0)
    assert len(feedback_layers(twin)) == 3
    x, _ = _data(4)
    np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))


def test_conversion_seed_gives_reproducible_and_distinct_matrices():
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(5), keras.layers.Dense(5)])
    first = [_numpy(layer.feedback) for layer in feedback_layers(to_feedback_alignment(model, seed=4))]
    again = [_numpy(layer.feedback) for layer in feedback_layers(to_feedback_alignment(model, seed=4))]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(first[0], first[1])


def test_conversion_refuses_what_it_cannot_convert():
    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)

        def call(self, inputs):
            return self.dense(inputs)

    model = Subclassed()
    model(np.ones((1, 3), "float32"))
    with pytest.raises(ValueError, match="cannot be converted"):
        to_feedback_alignment(model)
    with pytest.raises(ValueError, match="not built"):
        to_feedback_alignment(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="seed"):
        to_feedback_alignment(_mlp(), seed=-1)
    with pytest.raises(ValueError, match="takes no seed"):
        to_feedback_alignment(_mlp(), feedback_initializer="zeros", seed=0)


def test_layer_arguments_are_checked_at_construction():
    with pytest.raises(ValueError, match="units"):
        FeedbackAlignmentDense(0)
    with pytest.raises(ValueError, match="use_bias"):
        FeedbackAlignmentDense(2, use_bias="yes")
    with pytest.raises(ValueError):
        FeedbackAlignmentDense(2, feedback_initializer="no_such_initializer")
    with pytest.raises(ValueError):
        FeedbackAlignmentDense(2, activation="no_such_activation")


def test_angles_and_effective_rank_against_numpy():
    assert angle_between([1.0, 0.0], [0.0, 2.0]) == pytest.approx(90.0)
    assert angle_between([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(180.0)
    assert np.isnan(angle_between([0.0, 0.0], [1.0, 0.0]))
    matrix = np.diag([3.0, 1.0, 0.0])
    shares = np.array([0.75, 0.25])
    assert effective_rank(matrix) == pytest.approx(np.exp(-np.sum(shares * np.log(shares))))
    with pytest.raises(ValueError, match="zero"):
        effective_rank(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="matrix"):
        effective_rank(np.ones(3))
    model = to_feedback_alignment(_mlp(), seed=0)
    angles = weight_feedback_angles(model)
    for layer in feedback_layers(model):
        w, b = _numpy(layer.kernel).ravel(), _numpy(layer.feedback).ravel()
        expected = np.degrees(np.arccos(w @ b / np.linalg.norm(w) / np.linalg.norm(b)))
        assert angles[layer.name] == pytest.approx(expected, abs=1e-6)
    ranks = weight_effective_ranks(model)
    assert ranks["hidden"] == pytest.approx(effective_rank(_numpy(model.layers[0].kernel)))
    assert feedback_is_used(model) == {"hidden": False, "output": True}


def test_update_angles_are_zero_when_feedback_equals_the_weights():
    model = to_feedback_alignment(_mlp(batch_norm=True), seed=0)
    model.compile("adam", LOSS)
    x, y = _data(32)
    angles = update_angles(model, x, y)
    assert angles["output"] == pytest.approx(0.0, abs=1e-3)
    assert 20 < angles["hidden"] < 160  # random feedback: far from the true gradient
    moving = [_numpy(v) for v in model.layers[1].non_trainable_weights]
    for layer in feedback_layers(model):
        layer.feedback.assign(layer.kernel.numpy())
    angles = update_angles(model, x, y)
    assert angles["hidden"] == pytest.approx(0.0, abs=0.1)
    # Stateless: the BatchNorm statistics did not move.
    for before, variable in zip(moving, model.layers[1].non_trainable_weights):
        np.testing.assert_array_equal(_numpy(variable), before)
    with pytest.raises(ValueError, match="no feedback-alignment layers"):
        update_angles(_mlp(), x, y, loss=LOSS)
    with pytest.raises(ValueError, match="not compiled"):
        update_angles(to_feedback_alignment(_mlp()), x, y)


def test_monitor_logs_every_epoch_into_history_and_csv(tmp_path):
    model = to_feedback_alignment(_mlp(), seed=0)
    model.compile("adam", LOSS)
    x, y = _data(64)
    monitor = FeedbackAlignmentMonitor(data=(x[:16], y[:16]))
    csv_path = tmp_path / "training.csv"
    history = model.fit(x, y, epochs=2, batch_size=32, verbose=0,
                        callbacks=[monitor, keras.callbacks.CSVLogger(str(csv_path))])
    header = csv_path.read_text().splitlines()[0].split(",")
    assert {"fa_weight_angle", "fa_update_angle", "fa_effective_rank"} <= set(header)
    logs = history.history
    for name in ("fa_weight_angle", "fa_weight_angle_hidden", "fa_weight_angle_output",
                 "fa_effective_rank", "fa_effective_rank_hidden", "fa_update_angle",
                 "fa_update_angle_hidden", "fa_update_angle_output"):
        assert len(logs[name]) == 2, name
    # The mean leaves out the first layer, whose feedback is never used.
    assert logs["fa_weight_angle"] == logs["fa_weight_angle_output"]
    assert logs["fa_update_angle"] == logs["fa_update_angle_hidden"]
    assert logs["fa_weight_angle_output"][-1] == pytest.approx(
        weight_feedback_angles(model)["output"])
    assert monitor.initial["fa_effective_rank_output"] == pytest.approx(
        logs["fa_effective_rank_output"][0], abs=2.0)


def test_monitor_arguments_are_checked_at_construction():
    x, y = _data(8)
    with pytest.raises(ValueError, match="tuple"):
        FeedbackAlignmentMonitor(data=x)
    with pytest.raises(ValueError, match="as many targets"):
        FeedbackAlignmentMonitor(data=(x, y[:3]))
    with pytest.raises(ValueError, match="loss"):
        FeedbackAlignmentMonitor(loss="no_such_loss")
    with pytest.raises(ValueError, match="training"):
        FeedbackAlignmentMonitor(training="yes")
    with pytest.raises(ValueError, match="prefix"):
        FeedbackAlignmentMonitor(prefix=3)
    model = _mlp()
    model.compile("adam", LOSS)
    with pytest.raises(ValueError, match="no feedback-alignment layers"):
        model.fit(x, y, epochs=1, verbose=0, callbacks=[FeedbackAlignmentMonitor()])


def test_noise_warmup_trains_through_the_feedback_matrices():
    """One warm-up step: backprop's step when B = W, another one with random B."""
    fa = to_feedback_alignment(_mlp(), seed=0)
    bp = to_backpropagation(fa)
    aligned = to_feedback_alignment(bp)
    for layer in feedback_layers(aligned):
        layer.feedback.assign(layer.kernel.numpy())
    arguments = dict(num_classes=3, steps=1, batch_size=16, optimizer="sgd", learning_rate=0.5,
                     seed=7, verbose=0, noise_source="stream")
    start = _numpy(bp.layers[0].kernel)
    for model in (fa, bp, aligned):
        keras_noisewarm.warmup(model, **arguments)
    hidden, output = (_numpy(layer.kernel) for layer in bp.layers)
    assert np.abs(hidden - start).max() > 1e-3
    np.testing.assert_allclose(_numpy(aligned.layers[0].kernel), hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_numpy(aligned.layers[1].kernel), output, rtol=1e-5, atol=1e-6)
    # The output layer's update needs no feedback; the hidden layer's went through B.
    np.testing.assert_allclose(_numpy(fa.layers[1].kernel), output, rtol=1e-5, atol=1e-6)
    assert np.abs(_numpy(fa.layers[0].kernel) - hidden).max() > 1e-3


def test_convolution_gradients_are_those_of_the_feedback_kernel_for_the_input():
    layer = FeedbackAlignmentConv2D(3, 3, strides=2, padding="same")
    x = np.random.default_rng(4).standard_normal((2, 7, 7, 2)).astype("float32")
    layer.build(x.shape)
    plain = keras.layers.Conv2D(3, 3, strides=2, padding="same")
    plain.build(x.shape)
    plain.set_weights([_numpy(layer.kernel), _numpy(layer.bias)])
    np.testing.assert_array_equal(_numpy(layer(x)), _numpy(plain(x)))
    upstream = np.random.default_rng(5).standard_normal(tuple(layer(x).shape)).astype("float32")

    def feedback_loss(values):
        outputs, _ = layer.stateless_call(values[1:], [layer.feedback], values[0])
        return keras.ops.sum(keras.ops.multiply(outputs, upstream))

    def plain_loss(values):  # values: inputs, kernel, bias
        outputs, _ = plain.stateless_call(values[1:], [], values[0])
        return keras.ops.sum(keras.ops.multiply(outputs, upstream))

    found = [_numpy(g) for g in backend.gradients(feedback_loss, [x, layer.kernel, layer.bias])]
    usual = [_numpy(g) for g in backend.gradients(plain_loss, [x, layer.kernel, layer.bias])]
    through_feedback = _numpy(backend.gradients(plain_loss, [x, layer.feedback, layer.bias])[0])
    np.testing.assert_allclose(found[0], through_feedback, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(found[1], usual[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(found[2], usual[2], rtol=1e-5, atol=1e-5)
    assert not np.allclose(found[0], usual[0], atol=1e-3)


def test_cnn_conversion_training_and_saving(tmp_path):
    model = keras.Sequential([
        keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
        keras.layers.Flatten(), keras.layers.Dense(3, name="output")])
    twin = to_feedback_alignment(model, seed=0)
    assert [type(layer) for layer in feedback_layers(twin)] == [
        FeedbackAlignmentConv2D, FeedbackAlignmentDense]
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((32, 6, 6, 1)).astype("float32"), rng.integers(0, 3, 32)
    np.testing.assert_array_equal(twin.predict(x, verbose=0), model.predict(x, verbose=0))
    feedback = _numpy(twin.get_layer("conv").feedback)
    kernel = _numpy(twin.get_layer("conv").kernel)
    twin.compile(keras.optimizers.SGD(0.1), LOSS)
    twin.fit(x, y, epochs=2, batch_size=16, verbose=0)
    np.testing.assert_array_equal(_numpy(twin.get_layer("conv").feedback), feedback)
    assert np.abs(_numpy(twin.get_layer("conv").kernel) - kernel).max() > 1e-4
    assert 0 < update_angles(twin, x, y)["conv"] < 180
    twin.save(tmp_path / "cnn.keras")
    loaded = keras.saving.load_model(tmp_path / "cnn.keras")
    np.testing.assert_array_equal(_numpy(loaded.get_layer("conv").feedback), feedback)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), twin.predict(x, verbose=0))
    assert [type(layer).__name__ for layer in to_backpropagation(twin).layers] == [
        "Conv2D", "Flatten", "Dense"]
    with pytest.raises(ValueError, match="LoRA"):
        FeedbackAlignmentConv2D(2, 3, lora_rank=2)
