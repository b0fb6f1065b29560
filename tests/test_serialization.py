"""Every serialisable object of the package survives `get_config` ->
`from_config` and a `.keras` file loaded in a fresh process.

The objects are enumerated from Keras's registry (everything registered
under the `keras_noisewarm>` prefix), so that a new class without an example
in tests/serialization_helpers.py fails here. One fresh process per test
run loads every `.keras` file and config (tests/serialization_loader.py):
first without importing keras_noisewarm, as Keras does not import packages
other than its own, then after importing it.
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest

import serialization_helpers as helpers

import keras_noisewarm

TESTS = pathlib.Path(__file__).parent
ROOT = TESTS.parent


def registered_names():
    return sorted(
        key[len(helpers.PACKAGE_PREFIX):]
        for key in keras.saving.get_custom_objects()
        if key.startswith(helpers.PACKAGE_PREFIX)
    )


def test_every_registered_object_has_an_example():
    assert registered_names() == sorted(helpers.EXAMPLES)


def same_values(behaviour):
    """`behaviour`, with metric results compared to 1e-6: TensorFlow's
    multithreaded reductions may round two runs of one metric an ulp apart."""
    return {key: pytest.approx(value, rel=1e-6) if key == "result" else value
            for key, value in behaviour.items()}


def json_round_trip(obj):
    """Serialised, through JSON text (tuples become lists), and back."""
    text = json.dumps(keras.saving.serialize_keras_object(obj))
    return keras.saving.deserialize_keras_object(json.loads(text))


def same_config(first, second):
    return json.dumps(keras.saving.serialize_keras_object(first), sort_keys=True) == json.dumps(
        keras.saving.serialize_keras_object(second), sort_keys=True
    )


@pytest.mark.parametrize("name", sorted(helpers.EXAMPLES))
def test_config_round_trip_gives_an_equal_object_that_computes_the_same(name):
    original = helpers.EXAMPLES[name]()
    restored = json_round_trip(original)
    assert type(restored) is type(original)
    assert same_config(restored, original)
    assert helpers.behaviour(name, restored) == same_values(helpers.behaviour(name, original))


def test_noise_warmup_keeps_its_callbacks_and_tuple_shapes_through_json():
    restored = json_round_trip(helpers.EXAMPLES["NoiseWarmup"]())
    assert restored.input_shape == (16,)
    (callback,) = restored.callbacks
    assert isinstance(callback, keras_noisewarm.callbacks.NoiseWarmupCallback)
    assert callback.warmup_kwargs == {"steps": 2, "seed": 5}


def test_noise_warmup_refuses_to_serialise_a_callback_without_config():
    class Unsaveable(keras.callbacks.Callback):
        get_config = None

    warmup = keras_noisewarm.NoiseWarmup(num_classes=3, steps=2, callbacks=[Unsaveable()])
    with pytest.raises(ValueError, match="cannot be serialised"):
        warmup.get_config()


@pytest.mark.parametrize(
    "name", ["TemperatureScaling", "VectorScaling", "OODThreshold", "LACPredictionSets",
             "APSPredictionSets", "RAPSPredictionSets"],
)
def test_a_fitted_layer_rebuilt_from_its_config_and_weights_computes_the_same(name):
    logits, labels, _ = helpers.data()
    original = helpers.EXAMPLES[name]().fit(logits[:150], None if name == "OODThreshold" else labels[:150])
    restored = json_round_trip(original)
    assert restored.built  # from the config's build_config
    restored.set_weights(original.get_weights())
    assert restored.is_fitted and restored.from_logits is True
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(restored(logits[150:])),
        keras.ops.convert_to_numpy(original(logits[150:])),
    )


@pytest.fixture(scope="module")
def fresh_process(tmp_path_factory):
    """Everything saved here, and what one fresh process made of it."""
    directory = tmp_path_factory.mktemp("serialization")
    logits, labels, inputs = helpers.data()
    calibrated = helpers.calibrated_model()
    calibrated.save(directory / "calibrated.keras")
    classifier = helpers.compiled_classifier()
    input_labels = labels[: len(inputs)]
    classifier.fit(inputs, input_labels, epochs=1, verbose=0)
    classifier.save(directory / "classifier.keras")
    np.save(directory / "labels.npy", input_labels)
    configs = {
        name: keras.saving.serialize_keras_object(make()) for name, make in helpers.EXAMPLES.items()
    }
    (directory / "configs.json").write_text(json.dumps(configs))
    environment = dict(
        os.environ, KERAS_BACKEND=keras.backend.backend(),
        PYTHONPATH=os.pathsep.join([str(ROOT), str(TESTS)]),
    )
    completed = subprocess.run(
        [sys.executable, str(TESTS / "serialization_loader.py"), str(directory)],
        capture_output=True, text=True, env=environment, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((directory / "results.json").read_text())
    with np.load(directory / "results.npz") as stored:
        arrays = dict(stored)
    return {
        "results": results,
        "arrays": arrays,
        "calibrated": calibrated,
        "classifier": classifier,
        "inputs": inputs,
        "labels": input_labels,
    }


def test_keras_file_in_a_fresh_process_carries_every_fitted_weight_exactly(fresh_process):
    calibrated, arrays = fresh_process["calibrated"], fresh_process["arrays"]
    weights = helpers.layer_weights(calibrated)
    loaded = {key[len("weight:"):]: value for key, value in arrays.items() if key.startswith("weight:")}
    assert sorted(loaded) == sorted(weights)
    for key, value in weights.items():
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    # Every fitted layer came back fitted, as its own class.
    assert {name: kind for name, kind in fresh_process["results"]["layer_types"].items()
            if kind != "InputLayer" and name != "head"} == {
        "temperature": "TemperatureScaling", "vector": "VectorScaling",
        "isotonic": "IsotonicCalibration", "threshold": "OODThreshold",
        "lac": "LACPredictionSets", "aps": "APSPredictionSets", "raps": "RAPSPredictionSets",
    }
    fitted = [key for key in weights if key.endswith("/fitted")]
    assert len(fitted) == 7 and all(loaded[key] == 1.0 for key in fitted)


def test_keras_file_in_a_fresh_process_gives_the_same_outputs(fresh_process):
    expected = fresh_process["calibrated"].predict(fresh_process["inputs"], verbose=0)
    for index, output in enumerate(expected):
        np.testing.assert_array_equal(fresh_process["arrays"][f"output_{index}"], output)


def test_compiled_metrics_in_a_fresh_process_evaluate_to_the_same_values(fresh_process):
    classifier = fresh_process["classifier"]
    expected = classifier.evaluate(
        fresh_process["inputs"], fresh_process["labels"], verbose=0, return_dict=True
    )
    evaluated = fresh_process["results"]["evaluated"]
    assert sorted(evaluated) == sorted(expected)
    # The configured names and options came back (ece_l2 is not the default ECE).
    assert {"ece_l2", "mce", "adaptive_ece", "debiased_l2_ce", "classwise_ece", "nll_x",
            "brier_x"} <= set(evaluated)
    for name, value in expected.items():
        assert evaluated[name] == pytest.approx(value, rel=1e-6, abs=1e-7), name


@pytest.mark.parametrize("name", sorted(helpers.EXAMPLES))
def test_config_in_a_fresh_process_deserialises_to_the_same_object(fresh_process, name):
    original = helpers.EXAMPLES[name]()
    restored = fresh_process["results"]["restored"][name]
    assert restored["type"] == f"{type(original).__module__}.{type(original).__name__}"
    assert restored["config"] == json.loads(json.dumps(keras.saving.serialize_keras_object(original)))
    behaviour = json.loads(json.dumps(helpers.behaviour(name, original)))
    assert restored["behaviour"] == same_values(behaviour)


def test_loading_without_importing_the_package_names_the_class_and_its_module(fresh_process):
    results = fresh_process["results"]
    # Keras imports none of our modules on its own...
    assert results["modules_before"] == []
    error = results["error_without_import"]
    assert error is not None, "the .keras file loaded without keras_noisewarm imported"
    # ...so the user must import the package first; the error says which.
    assert "TemperatureScaling" in error or "VectorScaling" in error or "OODThreshold" in error
    assert "keras_noisewarm" in error
    # After `import keras_noisewarm` the same process loaded it (the other tests).
    assert fresh_process["results"]["layer_types"]
