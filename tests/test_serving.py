"""export_serving: a SavedModel whose signature carries calibration, OOD and sets.

Each backend's pytest process trains its own small classifier, fits the
post-hoc layers on its held-out outputs and exports once (module fixture);
one fresh TensorFlow process (tests/serving_client.py) then loads the
SavedModel as a serving client would and answers the queries, so every
check below compares what that process saw with the Keras objects here.
"""

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_noisewarm import conformal
from keras_noisewarm import ood
from keras_noisewarm import posthoc
from keras_noisewarm import serving

NUM_CLASSES = 4
NUM_FEATURES = 6
NUM_QUERIES = 37
CLIENT = pathlib.Path(__file__).with_name("serving_client.py")

EXPECTED_OUTPUTS = {
    "probabilities": ("float32", [None, NUM_CLASSES]),
    "predicted_class": ("int32", [None]),
    "confidence": ("float32", [None]),
    "calibrated_probabilities": ("float32", [None, NUM_CLASSES]),
    "calibrated_confidence": ("float32", [None]),
    "ood_score": ("float32", [None]),
    "is_unknown": ("bool", [None]),
    "prediction_set": ("bool", [None, NUM_CLASSES]),
    "prediction_set_size": ("int32", [None]),
}


def blobs(rng, num_examples):
    """Four overlapping Gaussian classes in six dimensions."""
    labels = rng.integers(0, NUM_CLASSES, size=num_examples)
    centres = np.eye(NUM_CLASSES, NUM_FEATURES) * 1.5
    inputs = centres[labels] + rng.normal(size=(num_examples, NUM_FEATURES))
    return inputs.astype("float32"), labels


def build_classifier():
    return keras.Sequential([
        keras.Input((NUM_FEATURES,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(NUM_CLASSES),
    ])


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A trained classifier, its fitted layers, its export and a client's view of it."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x_train, y_train = blobs(rng, 256)
    x_held_out, y_held_out = blobs(rng, 200)
    queries, _ = blobs(rng, NUM_QUERIES)
    model = build_classifier()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x_train, y_train, batch_size=64, epochs=4, verbose=0)
    held_out = model.predict(x_held_out, verbose=0)
    pieces = {
        "calibration": posthoc.TemperatureScaling().fit(held_out, y_held_out),
        "ood_threshold": ood.OODThreshold(score="energy", alpha=0.2).fit(held_out),
        "prediction_sets": conformal.LACPredictionSets(alpha=0.1).fit(held_out, y_held_out),
    }
    folder = tmp_path_factory.mktemp("export") / "classifier" / "1"
    folder.mkdir(parents=True)
    (folder / "stale.txt").write_text("left by an older export")
    written = serving.export_serving(model, folder, overwrite=True, **pieces)

    results = tmp_path_factory.mktemp("client")
    np.savez(results / "queries.npz", inputs=queries)
    subprocess.run(
        [sys.executable, str(CLIENT), str(folder), str(results / "queries.npz"), str(results)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    client = dict(np.load(results / "outputs.npz"))
    signatures = json.loads((results / "signatures.json").read_text())
    outputs = model.predict(queries, verbose=0)
    return {
        "model": model,
        "pieces": pieces,
        "folder": folder,
        "written": written,
        "queries": queries,
        "outputs": outputs,
        "client": client,
        "signatures": signatures,
    }


def served_value(served, name, batch):
    return served["client"][f"batch{batch}/{name}"]


@pytest.mark.parametrize("batch", [1, NUM_QUERIES])
def test_served_probabilities_are_the_keras_models(served, batch):
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(served["outputs"][:batch]))
    np.testing.assert_allclose(served_value(served, "probabilities", batch), probabilities, atol=1e-5)
    np.testing.assert_array_equal(
        served_value(served, "predicted_class", batch), probabilities.argmax(axis=1)
    )
    np.testing.assert_allclose(
        served_value(served, "confidence", batch), probabilities.max(axis=1), atol=1e-5
    )
    calibrated = keras.ops.convert_to_numpy(
        keras.ops.softmax(served["pieces"]["calibration"](served["outputs"][:batch]))
    )
    np.testing.assert_allclose(
        served_value(served, "calibrated_probabilities", batch), calibrated, atol=1e-5
    )


def test_signature_names_dtypes_and_shapes_are_documented(served):
    signatures = served["signatures"]
    assert {"serving_default", "serve", "serve_raw"} <= set(signatures)
    default = signatures["serving_default"]
    assert default["inputs"] == {"inputs": ["float32", [None, NUM_FEATURES]]}
    assert {name: tuple(spec) for name, spec in default["outputs"].items()} == EXPECTED_OUTPUTS
    assert {
        name: (dtype, list(shape)) for name, (dtype, shape) in served["written"].items()
    } == EXPECTED_OUTPUTS
    assert signatures["serve_raw"]["outputs"] == {"outputs": ["float32", [None, NUM_CLASSES]]}
    for batch in (1, NUM_QUERIES):
        for name, (dtype, shape) in EXPECTED_OUTPUTS.items():
            value = served_value(served, name, batch)
            assert value.dtype == np.dtype(dtype), name
            assert list(value.shape) == [batch] + shape[1:], name


def test_is_unknown_follows_the_threshold_rule(served):
    threshold = served["pieces"]["ood_threshold"]
    scores = served_value(served, "ood_score", NUM_QUERIES)
    unknown = served_value(served, "is_unknown", NUM_QUERIES)
    expected_scores = keras.ops.convert_to_numpy(threshold.scores(served["outputs"]))
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)
    cut = float(keras.ops.convert_to_numpy(threshold.threshold))
    np.testing.assert_array_equal(unknown, scores < cut)
    np.testing.assert_array_equal(
        unknown, keras.ops.convert_to_numpy(threshold(served["outputs"]))
    )
    # The check means something only if both answers occur.
    assert 0 < unknown.sum() < NUM_QUERIES


def test_prediction_set_matches_the_conformal_layer(served):
    sets = keras.ops.convert_to_numpy(served["pieces"]["prediction_sets"](served["outputs"]))
    served_sets = served_value(served, "prediction_set", NUM_QUERIES)
    np.testing.assert_array_equal(served_sets, sets)
    np.testing.assert_array_equal(
        served_value(served, "prediction_set_size", NUM_QUERIES), sets.sum(axis=1)
    )
    assert len(set(sets.sum(axis=1).tolist())) > 1  # sets of several sizes


def test_a_predict_request_gets_the_signatures_answer(served):
    for name in EXPECTED_OUTPUTS:
        np.testing.assert_array_equal(
            served["client"][f"grpc/{name}"], served_value(served, name, NUM_QUERIES)
        )


def test_saved_model_cli_lists_the_signatures(served):
    cli = served["signatures"]["saved_model_cli"]
    assert cli["returncode"] == 0
    text = cli["stdout"]
    assert "signature_def['serve_raw']" in text
    default = text.split("signature_def['serving_default']:")[1].split("signature_def[")[0]
    assert "inputs['inputs'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 6)" in default
    for name in EXPECTED_OUTPUTS:
        assert f"outputs['{name}'] tensor_info" in default


def test_overwrite_replaced_the_folder(served):
    assert not (served["folder"] / "stale.txt").exists()
    assert (served["folder"] / "saved_model.pb").exists()
    assert not [p for p in served["folder"].parent.iterdir() if p.name.startswith(".")]


# ----------------------------------------------------------------------------
# Bad input: a clear error, and nothing written.


def small_model():
    model = keras.Sequential([keras.Input((NUM_FEATURES,)), keras.layers.Dense(NUM_CLASSES)])
    rng = np.random.default_rng(1)
    held_out = model.predict(rng.normal(size=(64, NUM_FEATURES)), verbose=0)
    labels = rng.integers(0, NUM_CLASSES, size=64)
    return model, held_out, labels


@pytest.mark.parametrize(
    "argument, layer, message",
    [
        ("calibration", posthoc.TemperatureScaling(), "has not been fitted"),
        ("ood_threshold", ood.OODThreshold(), "has not been fitted"),
        ("prediction_sets", conformal.LACPredictionSets(), "has not been fitted"),
        ("calibration", ood.OODThreshold(), "must be a fitted TemperatureScaling"),
    ],
)
def test_unfitted_or_wrong_layers_are_refused(tmp_path, argument, layer, message):
    model, _, _ = small_model()
    target = tmp_path / "export"
    with pytest.raises(ValueError, match=message):
        serving.export_serving(model, target, **{argument: layer})
    assert not target.exists()


def test_a_model_with_several_outputs_is_refused(tmp_path):
    inputs = keras.Input((NUM_FEATURES,))
    model = keras.Model(inputs, [keras.layers.Dense(3)(inputs), keras.layers.Dense(2)(inputs)])
    with pytest.raises(ValueError, match="has 2 outputs"):
        serving.export_serving(model, tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_a_regression_model_is_refused(tmp_path):
    model = keras.Sequential([keras.Input((NUM_FEATURES,)), keras.layers.Dense(3)])
    model.compile(loss="mse")
    with pytest.raises(ValueError, match="needs a classifier"):
        serving.export_serving(model, tmp_path / "export")


def test_a_folder_that_is_not_empty_is_kept(tmp_path):
    model, _, _ = small_model()
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        serving.export_serving(model, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_layers_fitted_on_other_outputs_are_refused(tmp_path):
    model, held_out, labels = small_model()
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(held_out))
    sets = conformal.LACPredictionSets().fit(probabilities, labels)
    with pytest.raises(ValueError, match="fitted on probabilities, but model"):
        serving.export_serving(model, tmp_path / "export", prediction_sets=sets)


def test_a_vector_scaling_of_another_width_is_refused(tmp_path):
    model, _, _ = small_model()
    rng = np.random.default_rng(2)
    scaling = posthoc.VectorScaling().fit(
        3 * rng.normal(size=(64, NUM_CLASSES + 1)), rng.integers(0, NUM_CLASSES + 1, 64)
    )
    with pytest.raises(ValueError, match="could not be computed"):
        serving.export_serving(model, tmp_path / "export", calibration=scaling)
    assert not (tmp_path / "export").exists()


def test_score_arguments_are_checked(tmp_path):
    model, held_out, _ = small_model()
    threshold = ood.OODThreshold().fit(held_out)
    with pytest.raises(ValueError, match="not both"):
        serving.export_serving(model, tmp_path / "a", ood_threshold=threshold, ood_score="msp")
    with pytest.raises(ValueError, match="input gradients"):
        serving.export_serving(model, tmp_path / "b", ood_score="odin")
    softmax_model = keras.Sequential([model, keras.layers.Softmax()])
    with pytest.raises(ValueError, match="needs logits"):
        serving.export_serving(softmax_model, tmp_path / "c", ood_score="energy")
    assert not list(tmp_path.iterdir())


def test_platforms_belong_to_jax_exports(tmp_path):
    model, _, _ = small_model()
    if keras.backend.backend() == "jax":
        with pytest.raises(ValueError, match="must name some of"):
            serving.export_serving(model, tmp_path / "export", platforms=("gpu",))
    else:
        with pytest.raises(ValueError, match="JAX export"):
            serving.export_serving(model, tmp_path / "export", platforms=("cpu",))
    assert not (tmp_path / "export").exists()
