"""Serving signatures that carry a classifier's uncertainty (TF SavedModel).

`export_serving` writes a TensorFlow SavedModel, the format TensorFlow
Serving, Vertex AI and `tf.saved_model.load` read, whose default signature
answers every request with the class probabilities, the predicted class and
its confidence, and, when the fitted post-hoc layers of this package are
given, the calibrated probabilities, an OOD score, an `is_unknown` flag and
a conformal prediction set. The fitted numbers (temperature, threshold,
conformal quantile) travel inside the SavedModel as variables.

It is built on Keras's own export path, `keras.export.ExportArchive`, so
it works where that works: under TensorFlow, and under JAX (through
`jax2tf`, which embeds the computation as StableHLO, lowered for the
platforms given by `platforms`). Its PyTorch path fails in Keras 3.15
(see `keras_noisewarm.backend.export`); under PyTorch, `export_serving`
saves the model and the fitted layers as `.keras` files and writes the
SavedModel from a TensorFlow subprocess that reloads them.

The signature `serving_default` (also available as `serve`) takes one
tensor `inputs` of the model's input shape and dtype, with any batch size
`N` (a model of several inputs takes them under the names `saved_model_cli
show` lists), and returns:

| name | dtype | shape | present |
|---|---|---|---|
| `probabilities` | float32 | `(N, K)` | always |
| `predicted_class` | int32 | `(N,)` | always |
| `confidence` | float32 | `(N,)` | always |
| `calibrated_probabilities` | float32 | `(N, K)` | with `calibration` |
| `calibrated_confidence` | float32 | `(N,)` | with `calibration` |
| `ood_score` | float32 | `(N,)` | with `ood_threshold` or `ood_score` |
| `is_unknown` | bool | `(N,)` | with `ood_threshold` |
| `prediction_set` | bool | `(N, K)` | with `prediction_sets` |
| `prediction_set_size` | int32 | `(N,)` | with `prediction_sets` |

`K` is the number of classes (2 for a model with one sigmoid unit, whose
probabilities are `[1 - p, p]`). The signature `serve_raw` returns the
model's own outputs as `outputs` (its dtype, `(N, K)` or `(N, 1)`).

Every fitted layer reads the model's outputs, as `layer(model(x))` does in
Keras: fit them on `model.predict` of held-out data. Layers fitted on
calibrated outputs instead belong in the model: export
`keras.Sequential([model, temperature_layer])` and fit the others on its
outputs.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import keras
import numpy as np

from keras_noisewarm import inspection
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import tasks as tasks_lib
from keras_noisewarm import validation
from keras_noisewarm.backend import export as export_backend
from keras_noisewarm.conformal import layers as conformal_layers
from keras_noisewarm.ood import scores as scores_lib
from keras_noisewarm.ood import threshold as threshold_lib
from keras_noisewarm.posthoc import temperature as temperature_lib
from keras_noisewarm.posthoc import vector as vector_lib

INPUT_NAME = "inputs"
SERVING_ENDPOINT = "serve"
RAW_ENDPOINT = "serve_raw"
CALIBRATIONS = (temperature_lib.TemperatureScaling, vector_lib.VectorScaling)
PREDICTION_SETS = (
    conformal_layers.LACPredictionSets,
    conformal_layers.APSPredictionSets,
    conformal_layers.RAPSPredictionSets,
)
# Seconds the TensorFlow subprocess of a PyTorch export may take.
SUBPROCESS_TIMEOUT = 600


def export_serving(
    model,
    filepath,
    calibration=None,
    ood_threshold=None,
    prediction_sets=None,
    ood_score=None,
    from_logits=None,
    input_signature=None,
    platforms=None,
    overwrite=False,
    verbose=False,
):
    """Writes a SavedModel whose serving signature carries the model's uncertainty.

    Everything is checked before anything is written: an unfitted layer, a
    model with several outputs, a non-classifier, pieces fitted on other
    outputs (logits against probabilities) and an existing folder that is
    not empty all raise, and the folder is left as it was. The SavedModel
    is written to a temporary folder beside `filepath` and moved into place
    once complete.

    Args:
        model: A built Keras classifier with one output of shape
            `(batch, K)`: logits, probabilities, or one sigmoid unit.
        filepath: Folder to write the SavedModel to (a local path).
        calibration: A fitted `keras_noisewarm.posthoc.TemperatureScaling`
            (or `VectorScaling`): adds `calibrated_probabilities` and
            `calibrated_confidence`.
        ood_threshold: A fitted `keras_noisewarm.ood.OODThreshold`: adds
            `is_unknown` (its score below its threshold) and `ood_score`
            (its score).
        prediction_sets: A fitted conformal layer
            (`keras_noisewarm.conformal.LACPredictionSets`,
            `APSPredictionSets`, `RAPSPredictionSets`): adds
            `prediction_set` and `prediction_set_size`. Randomised APS and
            RAPS sets draw fresh randomness on every request.
        ood_score: A score name from the OOD registry
            (`keras_noisewarm.ood.score_names()`, e.g. `"energy"`, `"msp"`)
            or a scorer computed from outputs (`keras_noisewarm.ood.
            OutputScore`), to serve as `ood_score` without a threshold.
            With `ood_threshold`, leave it out: the threshold's own score is
            served, so that `is_unknown` is `ood_score < threshold`.
        from_logits: Whether the model outputs logits; `None` (default)
            detects it from one forward pass (see `keras_noisewarm.outputs`).
        input_signature: The signature's inputs, as for `model.export`
            (a list of `keras.InputSpec`); `None` reads them from the model,
            with a dynamic batch dimension.
        platforms: JAX only: the platforms the StableHLO is lowered for,
            e.g. `("cpu", "cuda")`. `None` lowers for the platform JAX runs
            on, and the SavedModel then runs only there (a model exported on
            a CPU does not run on a GPU server).
        overwrite: Whether to replace a folder that is not empty.
        verbose: Whether Keras prints the endpoints it wrote.

    Returns:
        A dict `{output name: (dtype, shape)}` of the `serving_default`
        signature's outputs, `None` for the batch dimension, e.g.
        `{"probabilities": ("float32", (None, 10)), ...}`.

    Raises:
        ValueError: On a model or fitted layer that cannot be served (see
            above), and `FileExistsError` on a non-empty folder without
            `overwrite=True`.

    Example:

    >>> import tempfile, numpy as np
    >>> from keras_noisewarm import ood
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> held_out = model.predict(np.random.default_rng(0).normal(size=(64, 4)), verbose=0)
    >>> threshold = ood.OODThreshold(alpha=0.1).fit(held_out)
    >>> folder = tempfile.mkdtemp()
    >>> outputs = export_serving(model, folder, ood_threshold=threshold, overwrite=True)
    >>> outputs["is_unknown"], outputs["probabilities"]
    (('bool', (None,)), ('float32', (None, 3)))
    """
    validation.check_bool("overwrite", overwrite)
    validation.check_bool("verbose", verbose)
    filepath = _checked_folder(filepath, overwrite)
    plan = ServingPlan(
        model,
        calibration=calibration,
        ood_threshold=ood_threshold,
        prediction_sets=prediction_sets,
        ood_score=ood_score,
        from_logits=from_logits,
    )
    input_signature = _input_signature(model, input_signature)
    options = export_backend.endpoint_options(platforms)
    plan.check_on(model, input_signature)
    if not export_backend.exports_in_process():
        return _export_through_tensorflow(plan, filepath, input_signature, verbose)
    _write(plan, filepath, input_signature, options, verbose)
    return plan.output_specs()


class ServingPlan:
    """What the serving signature computes from a model and its fitted layers.

    `export_serving` builds one, which checks every argument; `outputs`
    is the signature's computation on a batch of model outputs, in
    `keras.ops`, so that it exports from any backend. Use it in an
    `ExportArchive` endpoint of your own to add other outputs.

    Args:
        model: The classifier.
        calibration: A fitted `TemperatureScaling` or `VectorScaling`, or
            `None`.
        ood_threshold: A fitted `OODThreshold`, or `None`.
        prediction_sets: A fitted conformal prediction-set layer, or `None`.
        ood_score: A registered score name or an `OutputScore`, or `None`.
        from_logits: Whether the model outputs logits; `None` detects it.
    """

    def __init__(
        self,
        model,
        calibration=None,
        ood_threshold=None,
        prediction_sets=None,
        ood_score=None,
        from_logits=None,
    ):
        if not isinstance(model, keras.Model):
            raise TypeError(f"export_serving needs a keras.Model, got {type(model).__name__}.")
        self.model = model
        self.calibration = _fitted("calibration", calibration, CALIBRATIONS)
        self.ood_threshold = _fitted(
            "ood_threshold", ood_threshold, (threshold_lib.OODThreshold,)
        )
        self.prediction_sets = _fitted("prediction_sets", prediction_sets, PREDICTION_SETS)
        self.from_logits, self.output_width = _classifier_output(model, from_logits)
        # One sigmoid unit serves the probabilities of both classes.
        self.num_classes = max(self.output_width, 2)
        if self.output_width == 1 and (ood_threshold is not None or ood_score is not None):
            raise ValueError(
                f"Model {model.name!r} has one sigmoid output, and the OOD scores read "
                "two or more class columns (on one column they are constant). Serve "
                "a model with two logits (or softmax outputs) to get an OOD score."
            )
        for name, layer in self.fitted_layers().items():
            if layer.from_logits != self.from_logits:
                fitted_on = "logits" if layer.from_logits else "probabilities"
                given = "logits" if self.from_logits else "probabilities"
                raise ValueError(
                    f"`{name}` was fitted on {fitted_on}, but model {model.name!r} "
                    f"outputs {given}: fit it on the model's own outputs "
                    "(model.predict on held-out data)."
                )
        self.ood_score = self._scorer(ood_score)

    def fitted_layers(self):
        """The fitted layers given, by argument name."""
        layers = {
            "calibration": self.calibration,
            "ood_threshold": self.ood_threshold,
            "prediction_sets": self.prediction_sets,
        }
        return {name: layer for name, layer in layers.items() if layer is not None}

    def _scorer(self, ood_score):
        if ood_score is None:
            return None if self.ood_threshold is None else self.ood_threshold.scorer
        if self.ood_threshold is not None:
            raise ValueError(
                "Give `ood_threshold` or `ood_score`, not both: with a threshold "
                f"the served `ood_score` is the threshold's own score "
                f"({self.ood_threshold.scorer!r}), so that `is_unknown` is "
                "`ood_score < threshold`."
            )
        scorer = scores_lib.get(ood_score, from_logits=self.from_logits)
        if not isinstance(scorer, scores_lib.OutputScore):
            raise ValueError(
                f"The {scorer.key!r} score is not computed from the model's outputs "
                "alone (ODIN needs input gradients), so a serving signature cannot "
                f"compute it. Use one of {scores_lib.score_names()} other than 'odin'."
            )
        scorer.check_logits(self.from_logits)
        return scorer

    def outputs(self, model_outputs):
        """The signature's outputs (a dict of tensors) for a batch of model outputs."""
        model_outputs = keras.ops.convert_to_tensor(model_outputs)
        if keras.backend.standardize_dtype(model_outputs.dtype) != "float32":
            model_outputs = keras.ops.cast(model_outputs, "float32")
        probabilities = outputs_lib.probabilities(model_outputs, self.from_logits)
        served = {
            "probabilities": probabilities,
            "predicted_class": keras.ops.cast(keras.ops.argmax(probabilities, axis=-1), "int32"),
            "confidence": keras.ops.max(probabilities, axis=-1),
        }
        if self.calibration is not None:
            calibrated = outputs_lib.probabilities(
                self.calibration(model_outputs), self.calibration.from_logits
            )
            served["calibrated_probabilities"] = calibrated
            served["calibrated_confidence"] = keras.ops.max(calibrated, axis=-1)
        if self.ood_score is not None:
            served["ood_score"] = keras.ops.cast(
                self.ood_score.score_outputs(model_outputs, from_logits=self.from_logits),
                "float32",
            )
        if self.ood_threshold is not None:
            served["is_unknown"] = self.ood_threshold(model_outputs)
        if self.prediction_sets is not None:
            sets = self.prediction_sets(model_outputs)
            served["prediction_set"] = sets
            served["prediction_set_size"] = keras.ops.sum(keras.ops.cast(sets, "int32"), axis=-1)
        return served

    def output_specs(self):
        """`{name: (dtype, shape)}` of the outputs, `None` for the batch axis."""
        classes = (None, self.num_classes)
        specs = {
            "probabilities": ("float32", classes),
            "predicted_class": ("int32", (None,)),
            "confidence": ("float32", (None,)),
        }
        if self.calibration is not None:
            specs["calibrated_probabilities"] = ("float32", classes)
            specs["calibrated_confidence"] = ("float32", (None,))
        if self.ood_score is not None:
            specs["ood_score"] = ("float32", (None,))
        if self.ood_threshold is not None:
            specs["is_unknown"] = ("bool", (None,))
        if self.prediction_sets is not None:
            specs["prediction_set"] = ("bool", classes)
            specs["prediction_set_size"] = ("int32", (None,))
        return specs

    def check_on(self, model, input_signature):
        """Runs the signature's computation once on a small batch, eagerly.

        A fitted layer that does not fit the model's outputs (a
        `VectorScaling` fitted for another number of classes) fails here,
        before anything is written.
        """
        specs = keras.tree.flatten(input_signature)
        probe = [
            np.zeros(
                (2,) + tuple(1 if dim is None else int(dim) for dim in tuple(spec.shape)[1:]),
                keras.backend.standardize_dtype(spec.dtype),
            )
            for spec in specs
        ]
        probe = keras.tree.pack_sequence_as(input_signature, probe)
        try:
            served = self.outputs(model(*probe, training=False))
        except Exception as error:
            raise ValueError(
                f"The serving signature could not be computed on a batch of model "
                f"{model.name!r}'s outputs: {error}"
            ) from error
        for name, (dtype, shape) in self.output_specs().items():
            value = served[name]
            got = (keras.backend.standardize_dtype(value.dtype), tuple(value.shape[1:]))
            if got != (dtype, shape[1:]):
                raise ValueError(
                    f"The serving output {name!r} came out as {got}, not "
                    f"{(dtype, shape[1:])}: the fitted layers do not fit this model."
                )


def _fitted(argument, layer, classes):
    if layer is None:
        return None
    if not isinstance(layer, classes):
        names = " or ".join(cls.__name__ for cls in classes)
        raise ValueError(f"`{argument}` must be a fitted {names}, got {type(layer).__name__}.")
    if not layer.is_fitted:
        raise ValueError(
            f"`{argument}` ({type(layer).__name__} {layer.name!r}) has not been fitted, "
            "so it would serve its initial values (no calibration, nothing unknown, "
            "every class in every set). Call its fit(...) on the model's held-out "
            "outputs first."
        )
    return layer


def _classifier_output(model, from_logits):
    """`(from_logits, K)` of a single-output classifier, checked."""
    try:
        symbolic_outputs = model.outputs
    except (AttributeError, ValueError):
        symbolic_outputs = None
    if symbolic_outputs is not None and len(symbolic_outputs) > 1:
        raise ValueError(
            f"Model {model.name!r} has {len(symbolic_outputs)} outputs; a serving "
            "signature serves one classifier. Export a model of the output to "
            "serve: keras.Model(model.inputs, model.outputs[i])."
        )
    spec = inspection.inspect_model(model, from_logits=from_logits)
    if not spec.single_output:
        raise ValueError(
            f"Model {model.name!r} has {len(spec.tasks)} outputs; a serving signature "
            "serves one classifier. Export a model of the output to serve."
        )
    task = spec.task
    if not isinstance(task, (tasks_lib.Classification, tasks_lib.Binary)) or len(
        spec.output_structure.shape
    ) != 2:
        raise ValueError(
            f"Model {model.name!r} returns outputs of shape "
            f"{tuple(spec.output_structure.shape[1:])} per example ({task.name}); a "
            "serving signature of class probabilities needs a classifier with outputs "
            "of shape (batch, num_classes)."
        )
    return task.from_logits, spec.output_structure.shape[-1]


def _checked_folder(filepath, overwrite):
    filepath = pathlib.Path(os.fspath(filepath)).expanduser().absolute()
    if filepath.exists() and not filepath.is_dir():
        raise FileExistsError(f"{filepath} exists and is not a folder.")
    if filepath.is_dir() and any(filepath.iterdir()) and not overwrite:
        raise FileExistsError(
            f"The folder {filepath} is not empty. Pass overwrite=True to replace "
            "it, or choose a new folder (TensorFlow Serving reads versions from "
            "numbered subfolders: model/1, model/2, ...)."
        )
    return filepath


def _input_signature(model, input_signature):
    if input_signature is None:
        # What model.export uses: one positional argument holding the model's
        # input structure, the batch dimension left free.
        from keras.src.export.export_utils import get_input_signature

        input_signature = get_input_signature(model)
    if not isinstance(input_signature, (list, tuple)) or len(input_signature) != 1:
        raise ValueError(
            "The serving signature takes one positional argument (a tensor, or a "
            "list or dict of tensors for a model of several inputs): pass "
            "input_signature=[spec] (or [[spec, spec]]), got "
            f"{input_signature!r}."
        )
    specs = keras.tree.flatten(input_signature)
    if len(specs) == 1:
        # The one documented name, whatever the model's input is called.
        (spec,) = specs
        return [
            keras.InputSpec(
                shape=tuple(spec.shape),
                dtype=keras.backend.standardize_dtype(spec.dtype),
                name=INPUT_NAME,
            )
        ]
    return list(input_signature)


def _write(plan, filepath, input_signature, options, verbose):
    """Writes the SavedModel with `keras.export.ExportArchive` (TensorFlow, JAX)."""
    model = plan.model

    def serve(inputs):
        return plan.outputs(model(inputs, training=False))

    def serve_raw(inputs):
        return {"outputs": model(inputs, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    for layer in plan.fitted_layers().values():
        archive.track(layer)
    archive.add_endpoint(SERVING_ENDPOINT, serve, input_signature=input_signature, **options)
    archive.add_endpoint(RAW_ENDPOINT, serve_raw, input_signature=input_signature, **options)
    filepath.parent.mkdir(parents=True, exist_ok=True)
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{filepath.name}.", dir=filepath.parent))
    try:
        archive.write_out(str(staging), verbose=verbose)
        if filepath.exists():
            shutil.rmtree(filepath)
        staging.rename(filepath)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


# ----------------------------------------------------------------------------
# PyTorch: the SavedModel is written by TensorFlow, from the `.keras` files.


def _export_through_tensorflow(plan, filepath, input_signature, verbose):
    modules = _modules_to_import(plan)
    with tempfile.TemporaryDirectory(prefix="keras_noisewarm_export_") as folder:
        folder = pathlib.Path(folder)
        plan.model.save(folder / "model.keras")
        request = {
            "filepath": str(filepath),
            "modules": modules,
            "from_logits": plan.from_logits,
            "ood_score": None
            if plan.ood_threshold is not None or plan.ood_score is None
            else keras.saving.serialize_keras_object(plan.ood_score),
            "input_signature": [_spec_config(spec) for spec in keras.tree.flatten(input_signature)],
            "input_structure": _structure_config(input_signature),
            "verbose": verbose,
            "layers": {},
        }
        for name, layer in plan.fitted_layers().items():
            holder = keras.Sequential([keras.Input((plan.output_width,)), layer])
            holder.save(folder / f"{name}.keras")
            request["layers"][name] = f"{name}.keras"
        (folder / "request.json").write_text(json.dumps(request))
        environment = dict(os.environ, KERAS_BACKEND="tensorflow")
        environment["PYTHONPATH"] = os.pathsep.join(path for path in sys.path if path)
        result = subprocess.run(
            [sys.executable, "-m", "keras_noisewarm.serving", str(folder / "request.json")],
            env=environment,
            capture_output=True,
            text=True,
            timeout=SUBPROCESS_TIMEOUT,
        )
        if result.returncode != 0:
            raise RuntimeError(
                "A model trained under PyTorch is exported by TensorFlow, from its "
                "reloaded .keras file; that TensorFlow process failed:\n"
                + result.stderr[-4000:]
            )
        if verbose:
            print(result.stdout, end="")
        written = json.loads((folder / "written.json").read_text())
    return {name: (dtype, tuple(shape)) for name, (dtype, shape) in written.items()}


def _modules_to_import(plan):
    """Modules defining the classes the TensorFlow process must load.

    Keras finds a custom class of a `.keras` file by its registered name,
    which exists once the module that defines it has been imported.
    """
    objects = list(plan.model._flatten_layers()) + list(plan.fitted_layers().values())
    if plan.ood_score is not None:
        objects.append(plan.ood_score)
    modules = set()
    for obj in objects:
        module = type(obj).__module__
        if module.split(".")[0] in ("keras", "keras_noisewarm"):
            continue
        if module == "__main__":
            raise ValueError(
                f"{type(obj).__name__} is defined in __main__ (a script or notebook); "
                "under PyTorch the SavedModel is written by a TensorFlow process that "
                "reloads the model, and it cannot import __main__. Move the class "
                "into a module (with @keras.saving.register_keras_serializable)."
            )
        modules.add(module)
    return sorted(modules)


def _spec_config(spec):
    """A `keras.InputSpec` or `tf.TensorSpec` as the arguments of a `keras.InputSpec`."""
    return {
        "shape": [None if dim is None else int(dim) for dim in tuple(spec.shape)],
        "dtype": keras.backend.standardize_dtype(spec.dtype),
        "name": getattr(spec, "name", None),
    }


def _structure_config(input_signature):
    return keras.tree.map_structure(lambda spec: 0, input_signature)


def _export_from_request(request_path):
    """The TensorFlow side of a PyTorch export: reload, export, report."""
    folder = pathlib.Path(request_path).parent
    request = json.loads(pathlib.Path(request_path).read_text())
    import importlib

    for module in request["modules"]:
        importlib.import_module(module)
    model = keras.saving.load_model(folder / "model.keras", compile=False)
    layers = {
        name: keras.saving.load_model(folder / file, compile=False).layers[-1]
        for name, file in request["layers"].items()
    }
    specs = [keras.InputSpec(**config) for config in request["input_signature"]]
    input_signature = keras.tree.pack_sequence_as(request["input_structure"], specs)
    ood_score = request["ood_score"]
    written = export_serving(
        model,
        request["filepath"],
        ood_score=None if ood_score is None else keras.saving.deserialize_keras_object(ood_score),
        from_logits=request["from_logits"],
        input_signature=input_signature,
        overwrite=True,
        verbose=request["verbose"],
        **layers,
    )
    (folder / "written.json").write_text(json.dumps(written))


if __name__ == "__main__":
    _export_from_request(sys.argv[1])
