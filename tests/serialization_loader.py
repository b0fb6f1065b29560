"""Loads what tests/test_serialization.py saved, in a fresh Python process.

    python tests/serialization_loader.py DIRECTORY

First without importing keras_noisewarm (as a user who forgot to), then
after importing it. Writes `results.json` and `results.npz` into DIRECTORY.
"""

import json
import os
import pathlib
import sys

import keras
import numpy as np


def main(directory):
    directory = pathlib.Path(directory)
    results = {"modules_before": sorted(m for m in sys.modules if m.startswith("keras_noisewarm"))}
    try:
        keras.saving.load_model(directory / "calibrated.keras")
        results["error_without_import"] = None
    except Exception as error:  # what the user sees, whatever its type
        results["error_without_import"] = f"{type(error).__name__}: {error}"

    import keras_noisewarm  # noqa: F401
    import serialization_helpers as helpers

    _, _, inputs = helpers.data()
    arrays = {}
    calibrated = keras.saving.load_model(directory / "calibrated.keras")
    for index, output in enumerate(calibrated.predict(inputs, verbose=0)):
        arrays[f"output_{index}"] = output
    for key, value in helpers.layer_weights(calibrated).items():
        arrays[f"weight:{key}"] = value
    results["layer_types"] = {layer.name: type(layer).__name__ for layer in calibrated.layers}

    classifier = keras.saving.load_model(directory / "classifier.keras")
    labels = np.load(directory / "labels.npy")
    results["evaluated"] = classifier.evaluate(inputs, labels, verbose=0, return_dict=True)

    configs = json.loads((directory / "configs.json").read_text())
    restored = {}
    for name, config in configs.items():
        obj = keras.saving.deserialize_keras_object(config)
        restored[name] = {
            "type": f"{type(obj).__module__}.{type(obj).__name__}",
            "config": json.loads(json.dumps(keras.saving.serialize_keras_object(obj))),
            "behaviour": helpers.behaviour(name, obj),
        }
    results["restored"] = restored
    (directory / "results.json").write_text(json.dumps(results, default=float))
    np.savez(directory / "results.npz", **arrays)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(sys.argv[1])
