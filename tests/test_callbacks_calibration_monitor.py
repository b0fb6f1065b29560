import contextlib
import csv
import os
import warnings

import keras
import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from keras_noisewarm import metrics
from keras_noisewarm.callbacks import CalibrationMonitor

NUM_CLASSES = 4
INPUT_DIM = 12
BATCH_SIZE = 50
NAMES = ["ece", "mce", "nll", "brier_score", "accuracy", "confidence"]
OOD_NAMES = ["ood_confidence", "ood_auroc"]


def labelled(count, seed, binary=False):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((count, INPUT_DIM)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    if not binary:
        y = y + 2 * (x[:, 1] > 0).astype("int64")
    return x, y


def ood_inputs(count=150):
    return 3.0 * np.random.default_rng(9).standard_normal((count, INPUT_DIM)).astype("float32")


def model_with_head(head="logits"):
    units, activation, loss = {
        "logits": (NUM_CLASSES, None, keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
        "softmax": (NUM_CLASSES, "softmax", "sparse_categorical_crossentropy"),
        "sigmoid": (1, "sigmoid", "binary_crossentropy"),
    }[head]
    model = keras.Sequential(
        [
            keras.Input((INPUT_DIM,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.Dense(units, activation=activation),
        ]
    )
    model.compile(keras.optimizers.Adam(1e-2), loss, metrics=["accuracy"])
    return model


def class_probabilities(outputs, head):
    outputs = np.asarray(outputs, dtype="float64")
    if head == "logits":
        exp = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        return exp / exp.sum(axis=1, keepdims=True)
    if head == "sigmoid":
        return np.concatenate([1.0 - outputs, outputs], axis=1)
    return outputs


def pairwise_auroc(id_scores, ood_scores):
    greater = (id_scores[:, None] > ood_scores[None, :]).mean()
    ties = (id_scores[:, None] == ood_scores[None, :]).mean()
    return greater + ties / 2


def direct_values(model, x, y, ood, head):
    """What the monitor should log, from model.predict and first principles."""
    outputs = model.predict(x, batch_size=BATCH_SIZE, verbose=0)
    from_logits = head == "logits"
    values = {}
    for name, metric in [
        ("ece", metrics.ExpectedCalibrationError(from_logits=from_logits)),
        ("mce", metrics.MaximumCalibrationError(from_logits=from_logits)),
    ]:
        metric.update_state(y, outputs)
        values[name] = float(metric.result())
    probabilities = class_probabilities(outputs, head)
    rows = np.arange(len(y))
    confidence = probabilities.max(axis=1)
    values["nll"] = -np.mean(np.log(probabilities[rows, y]))
    one_hot = np.eye(probabilities.shape[1])[y]
    brier = np.sum((probabilities - one_hot) ** 2, axis=1)
    values["brier_score"] = np.mean(brier / 2 if head == "sigmoid" else brier)
    values["accuracy"] = np.mean(probabilities.argmax(axis=1) == y)
    values["confidence"] = np.mean(confidence)
    ood_confidence = class_probabilities(
        model.predict(ood, batch_size=BATCH_SIZE, verbose=0), head
    ).max(axis=1)
    values["ood_confidence"] = np.mean(ood_confidence)
    values["ood_auroc"] = pairwise_auroc(confidence, ood_confidence)
    return values


class CheckAgainstDirectValues(keras.callbacks.Callback):
    def __init__(self, x, y, ood, head):
        super().__init__()
        self.data = (x, y, ood, head)
        self.checked_epochs = []

    def on_epoch_end(self, epoch, logs=None):
        expected = direct_values(self.model, *self.data)
        for name, value in expected.items():
            np.testing.assert_allclose(logs[f"val_{name}"], value, rtol=2e-5, atol=1e-6, err_msg=name)
        self.checked_epochs.append(epoch)


@pytest.mark.parametrize("head", ["logits", "softmax", "sigmoid"])
def test_logged_values_equal_the_metrics_evaluated_directly(head):
    binary = head == "sigmoid"
    x, y = labelled(300, seed=0, binary=binary)
    x_val, y_val = labelled(200, seed=1, binary=binary)
    model = model_with_head(head)
    compile_config = model.get_compile_config()
    user_metrics = model.metrics
    checker = CheckAgainstDirectValues(x_val, y_val, ood_inputs(), head)
    history = model.fit(
        x, y, batch_size=BATCH_SIZE, epochs=2, verbose=0,
        callbacks=[
            CalibrationMonitor((x_val, y_val), ood_data=ood_inputs(), batch_size=BATCH_SIZE),
            checker,
        ],
    )
    assert checker.checked_epochs == [0, 1]
    assert sorted(history.history) == sorted(
        ["loss", "accuracy"] + [f"val_{name}" for name in NAMES + OOD_NAMES]
    )
    # The model's own compile state is untouched.
    assert model.get_compile_config() == compile_config
    assert model.metrics == user_metrics


def started_monitor(model, validation_data, **kwargs):
    monitor = CalibrationMonitor(validation_data, **kwargs)
    monitor.set_model(model)
    monitor.on_train_begin()
    return monitor


class Batches(keras.utils.PyDataset):
    def __init__(self, x, y):
        super().__init__()
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x) // BATCH_SIZE

    def __getitem__(self, index):
        batch = slice(index * BATCH_SIZE, (index + 1) * BATCH_SIZE)
        return self.x[batch], self.y[batch]


def endless_batches(x, y):
    while True:
        for start in range(0, len(x), BATCH_SIZE):
            yield x[start:start + BATCH_SIZE], y[start:start + BATCH_SIZE]


def torch_loader(x, y):
    import torch

    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH_SIZE)


@pytest.fixture(scope="module")
def model_and_array_values():
    """A model and what the monitor measures on array inputs, once for all forms."""
    keras.utils.set_random_seed(1234)
    x_val, y_val = labelled(200, seed=1)
    model = model_with_head("logits")
    # The generator below repeats the OOD set from its start to fill 4
    # whole batches: 150 examples and the first 50 again.
    ood = ood_inputs()
    repeated_ood = np.concatenate([ood, ood[:50]])
    values = {}
    for name, ood_data in [("arrays", ood), ("repeated", repeated_ood)]:
        values[name] = started_monitor(
            model, (x_val, y_val), ood_data=ood_data, batch_size=BATCH_SIZE
        ).evaluate()
    return model, values


@pytest.mark.parametrize("kind", ["dataset", "py_dataset", "generator", "torch_dataloader"])
def test_datasets_and_generators_give_the_values_of_arrays(kind, model_and_array_values):
    model, values = model_and_array_values
    x_val, y_val = labelled(200, seed=1)
    ood = ood_inputs()
    expected = values["arrays"]
    steps = None
    if kind == "dataset":
        data = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(BATCH_SIZE)
        ood = tf.data.Dataset.from_tensor_slices(ood).batch(BATCH_SIZE)
    elif kind == "py_dataset":
        data = Batches(x_val, y_val)
    elif kind == "generator":
        data = endless_batches(x_val, y_val)
        ood = endless_batches(ood, np.zeros(len(ood)))
        steps = 200 // BATCH_SIZE
        expected = values["repeated"]
    else:
        data = torch_loader(x_val, y_val)
    results = started_monitor(model, data, ood_data=ood, steps=steps).evaluate()
    assert sorted(results) == sorted(NAMES + OOD_NAMES)
    for name in expected:
        assert results[name] == pytest.approx(expected[name], rel=1e-5, abs=1e-7), name


def test_sample_weights_are_used():
    x_val, y_val = labelled(200, seed=1)
    weights = np.linspace(0.0, 2.0, 200).astype("float32")
    model = model_with_head("logits")
    results = started_monitor(model, (x_val, y_val, weights), batch_size=BATCH_SIZE).evaluate()
    ece = metrics.ExpectedCalibrationError(from_logits=True)
    ece.update_state(y_val, model.predict(x_val, verbose=0), sample_weight=weights)
    assert results["ece"] == pytest.approx(float(ece.result()), rel=1e-5)
    unweighted = started_monitor(model, (x_val, y_val)).evaluate()
    assert results["ece"] != pytest.approx(unweighted["ece"], rel=1e-3)


class RecordingTensorBoard(keras.callbacks.TensorBoard):
    """Keras's TensorBoard callback, with its scalars recorded in memory.

    `tf.summary.scalar` needs the `tensorboard` package, which is not
    installed here. Everything else is Keras's own code, including the
    split of the logs into train and validation scalars; the recording
    notes which of the two writers each scalar went to.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorded = {}
        self.active_writers = []

    @property
    def summary(self):
        return _RecordingSummary(self)


class _RecordingSummary:
    def __init__(self, callback):
        self.callback = callback

    def __getattr__(self, name):
        return getattr(tf.summary, name)

    def create_file_writer(self, logdir, **kwargs):
        return _NamedWriter(os.path.basename(logdir), self.callback)

    def scalar(self, name, data, step=None, description=None):
        if not self.callback.active_writers:
            return False  # as tf.summary does without a default writer
        writer = self.callback.active_writers[-1]
        self.callback.recorded.setdefault((writer, name), {})[int(step)] = float(data)
        return True


class _NamedWriter:
    def __init__(self, name, callback):
        self.name, self.callback = name, callback

    @contextlib.contextmanager
    def as_default(self, step=None):
        self.callback.active_writers.append(self.name)
        try:
            yield self
        finally:
            self.callback.active_writers.pop()

    def flush(self):
        pass

    def close(self):
        pass


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """One fit with the monitor followed by Keras's logging callbacks."""
    keras.utils.set_random_seed(1234)
    directory = tmp_path_factory.mktemp("monitor")
    x, y = labelled(300, seed=0)
    x_val, y_val = labelled(200, seed=1)
    # An ECE in [0, 1] can never fall by min_delta=1, so this one stops at
    # the second epoch, whatever the values: if it reads val_ece at all.
    stop_at_second_epoch = keras.callbacks.EarlyStopping(
        monitor="val_ece", mode="min", min_delta=1.0, patience=1
    )
    track_best = keras.callbacks.EarlyStopping(monitor="val_ece", mode="min", patience=100)
    tensorboard = RecordingTensorBoard(str(directory / "tensorboard"), write_graph=False)
    monitor = CalibrationMonitor(
        (x_val, y_val), batch_size=BATCH_SIZE, plot_dir=str(directory / "plots"),
        reliability_freq=2,
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model_with_head("logits").fit(
            x, y, batch_size=BATCH_SIZE, epochs=10, verbose=0,
            # Keras's own validation logs val_loss and val_accuracy.
            validation_data=(x_val, y_val),
            callbacks=[
                monitor,
                CalibrationMonitor((x_val, y_val), prefix="heldout_"),
                stop_at_second_epoch,
                track_best,
                keras.callbacks.CSVLogger(str(directory / "log.csv")),
                tensorboard,
            ],
        )
    return dict(
        warnings=[str(warning.message) for warning in caught],
        history=history.history, directory=directory, monitor=monitor,
        stop_at_second_epoch=stop_at_second_epoch, track_best=track_best,
        tensorboard=tensorboard,
    )


def test_early_stopping_monitors_val_ece(logged_run):
    ece = logged_run["history"]["val_ece"]
    assert len(ece) == 2
    assert logged_run["stop_at_second_epoch"].stopped_epoch == 1
    assert logged_run["track_best"].best == pytest.approx(min(ece))
    assert logged_run["track_best"].best_epoch == int(np.argmin(ece))


def test_csv_logger_writes_a_column_per_value(logged_run):
    with open(logged_run["directory"] / "log.csv") as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 2
    for name in NAMES:
        logged = [float(row[f"val_{name}"]) for row in rows]
        np.testing.assert_allclose(logged, logged_run["history"][f"val_{name}"], rtol=1e-6)


def test_tensorboard_writes_the_values_as_validation_scalars(logged_run):
    recorded = logged_run["tensorboard"].recorded
    for name in NAMES:
        scalars = recorded[("validation", f"epoch_{name}")]
        assert sorted(scalars) == [0, 1]
        np.testing.assert_allclose(
            [scalars[step] for step in (0, 1)],
            logged_run["history"][f"val_{name}"],
            rtol=1e-6,
        )
    assert ("train", "epoch_loss") in recorded


def test_figures_are_saved_every_n_epochs_and_at_the_end(logged_run):
    plots = logged_run["directory"] / "plots"
    # reliability_freq=2 over two epochs: only the second.
    assert sorted(os.listdir(plots)) == [
        "calibration_trajectory.png", "reliability_epoch_002.png",
    ]
    for name in os.listdir(plots):
        image = matplotlib.image.imread(str(plots / name))
        assert image.ndim == 3 and min(image.shape[:2]) >= 300
        assert image[..., :3].std() > 0.05  # something is drawn
    trajectory = logged_run["monitor"].trajectory
    assert trajectory["epoch"] == [0, 1]
    assert trajectory["accuracy"] == logged_run["history"]["val_accuracy"]
    assert trajectory["confidence"] == logged_run["history"]["val_confidence"]


def test_prefix_keeps_keras_validation_values_apart(logged_run):
    # The default prefix collides with Keras's val_accuracy: a warning says so.
    assert any("overwrites 'val_accuracy'" in message for message in logged_run["warnings"])
    history = logged_run["history"]
    assert "val_loss" in history
    for name in NAMES:
        np.testing.assert_allclose(history[f"heldout_{name}"], history[f"val_{name}"], rtol=1e-6)


class UnitIntervalHead(keras.Model):
    """Outputs in [0, 1] that do not sum to one: neither logits nor probabilities."""

    def __init__(self):
        super().__init__()
        self.head = keras.layers.Dense(NUM_CLASSES, activation="hard_sigmoid")

    def call(self, inputs):
        return self.head(inputs)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(validation_data="x_only"), "validation_data"),
        (dict(batch_size=0), "batch_size"),
        (dict(num_bins=0), "num_bins"),
        (dict(steps=0), "steps"),
        (dict(reliability_freq=-1), "reliability_freq"),
        (dict(from_logits="yes"), "from_logits"),
        (dict(prefix=None), "prefix"),
        (dict(model=UnitIntervalHead()), "from_logits=True"),
    ],
)
def test_invalid_arguments_raise_before_any_training_step(kwargs, message):
    x, y = labelled(100, seed=0)
    model = kwargs.pop("model", None)
    if model is None:
        model = model_with_head("logits")
    else:
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    validation_data = kwargs.pop("validation_data", (x, y))
    if validation_data == "x_only":
        validation_data = (x,)

    class CountBatches(keras.callbacks.Callback):
        batches = 0

        def on_train_batch_begin(self, batch, logs=None):
            CountBatches.batches += 1

    with pytest.raises(ValueError, match=message):
        model.fit(
            x, y, epochs=1, verbose=0,
            callbacks=[CalibrationMonitor(validation_data, **kwargs), CountBatches()],
        )
    assert CountBatches.batches == 0
