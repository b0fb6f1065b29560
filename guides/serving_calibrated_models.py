"""
Title: Serving calibrated models
Author: keras-noisewarm developers
Date created: 2026/12/02
Last modified: 2026/12/02
Description: Export a warmed-up, calibrated classifier whose TF Serving signature says when it does not know.
Accelerator: None
"""

"""
## Introduction

A calibrated model is only useful in production if the calibration reaches
the clients. The post-hoc tools of `keras_noisewarm` fit a handful of
numbers on held-out data: a temperature, an OOD threshold, a conformal
quantile. `keras_noisewarm.export_serving` writes them, with the model,
into one TensorFlow SavedModel whose default serving signature answers
every request with

- `probabilities`, `predicted_class` and `confidence`;
- `calibrated_probabilities` and `calibrated_confidence` (temperature
  scaling);
- `ood_score` and `is_unknown` (the score below the fitted threshold);
- `prediction_set` and `prediction_set_size` (split conformal prediction).

The SavedModel is what TensorFlow Serving, Vertex AI, or any program with
`tf.saved_model.load` reads; it needs neither Keras nor this package at
serving time. This guide trains a digit classifier with the noise warm-up,
fits the three post-hoc layers, exports, reloads the export in a fresh
process the way a serving client sees it, and reads `is_unknown` for digits
and for clothes (Fashion-MNIST), which the model has never seen.

It runs on every Keras backend. Under TensorFlow and JAX the export is
Keras's own `ExportArchive`; under PyTorch, whose Keras export is not
usable yet, `export_serving` saves the model as a `.keras` file and a
TensorFlow subprocess writes the SavedModel from it.
"""

"""
## Setup
"""

import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import conformal
from keras_noisewarm import datasets
from keras_noisewarm import ood
from keras_noisewarm import posthoc

# The guide runs as a test in a fast mode with smaller sizes.
FAST = os.environ.get("KERAS_NOISEWARM_FAST") == "1"
NUM_TRAIN = 2_000 if FAST else 20_000
NUM_HELD_OUT = 1_000 if FAST else 5_000
NUM_TEST = 1_000 if FAST else 5_000
EPOCHS = 2 if FAST else 10
WARMUP_STEPS = 50 if FAST else 2_500  # 2,500 x 128 = the package default
ALPHA_OOD = 0.05  # share of in-distribution inputs the threshold may flag
ALPHA_SETS = 0.1  # conformal miscoverage
keras.utils.set_random_seed(0)

"""
## Data

MNIST digits are the known inputs, split into a training set, a **held-out**
set for fitting the post-hoc layers (never trained on), and a test set;
Fashion-MNIST images are the unknown inputs. Pixels are normalised with the
training set's mean and standard deviation, the scale of the warm-up's
standard-normal noise.
"""

(x_digits, y_digits), (x_digits_test, y_digits_test) = datasets.load_mnist()
_, (x_clothes, _) = datasets.load_fashion_mnist()
rng = np.random.default_rng(0)
train = rng.permutation(len(x_digits))[:NUM_TRAIN]
split = rng.permutation(len(x_digits_test))
held_out, test = split[:NUM_HELD_OUT], split[NUM_HELD_OUT : NUM_HELD_OUT + NUM_TEST]
unknown = rng.permutation(len(x_clothes))[:NUM_TEST]
mean, std = x_digits[train].mean() / 255.0, x_digits[train].std() / 255.0


def normalised(images):
    return ((images[..., None].astype("float32") / 255.0 - mean) / std).astype("float32")


x_train, y_train = normalised(x_digits[train]), y_digits[train]
x_held_out, y_held_out = normalised(x_digits_test[held_out]), y_digits_test[held_out]
x_test, y_test = normalised(x_digits_test[test]), y_digits_test[test]
x_unknown = normalised(x_clothes[unknown])

"""
## Warm up, then train

The paper's MLP blocks (Dense, ReLU, BatchNorm) end in ten logits. The
warm-up comes first, with explicit settings: Adam at 1e-4, batches of 128
noise images.
"""

model = keras.Sequential([
    keras.Input((28, 28, 1)),
    keras.layers.Flatten(),
    keras.layers.Dense(256, kernel_initializer="he_normal"),
    keras.layers.ReLU(),
    keras.layers.BatchNormalization(),
    keras.layers.Dense(256, kernel_initializer="he_normal"),
    keras.layers.ReLU(),
    keras.layers.BatchNormalization(),
    keras.layers.Dense(10),
])
keras_noisewarm.warmup(
    model, num_classes=10, steps=WARMUP_STEPS, batch_size=128, learning_rate=1e-4,
    seed=0, verbose=0,
)
print("After warm-up:", keras_noisewarm.noise_confidence(model))

model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
model.fit(x_train, y_train, batch_size=128, epochs=EPOCHS, verbose=0)
test_logits = model.predict(x_test, verbose=0)
print(f"Test accuracy: {np.mean(test_logits.argmax(axis=1) == y_test):.3f}")

"""
## Fit the post-hoc layers on held-out outputs

Each layer is fitted on the model's outputs for the held-out digits, and
reads the same outputs in the SavedModel:

- `TemperatureScaling` finds the temperature that minimises held-out NLL;
- `OODThreshold(score="energy", alpha=0.05)` sets the energy threshold
  below which at most 5% of new digits fall, on average over held-out sets;
- `LACPredictionSets(alpha=0.1)` finds the quantile that makes prediction
  sets hold the true digit 90% of the time, on average.
"""

held_out_logits = model.predict(x_held_out, verbose=0)
temperature = posthoc.TemperatureScaling().fit(held_out_logits, y_held_out)
threshold = ood.OODThreshold(score="energy", alpha=ALPHA_OOD).fit(held_out_logits)
sets = conformal.LACPredictionSets(alpha=ALPHA_SETS).fit(held_out_logits, y_held_out)
print(f"Temperature: {temperature.temperature:.3f}")
print(f"Energy threshold: {float(keras.ops.convert_to_numpy(threshold.threshold)):.3f}")

"""
## Export

TensorFlow Serving looks for numbered version folders under a model's base
path, so the SavedModel goes to `digits/1`. Everything is checked before
anything is written: an unfitted layer, a model with several outputs, a
layer fitted on probabilities for a model that returns logits, or a folder
that is not empty (without `overwrite=True`) raise an error, and the folder
is left alone.
"""

workspace = pathlib.Path("serving_guide")
export_path = workspace / "digits" / "1"
signature = keras_noisewarm.export_serving(
    model,
    export_path,
    calibration=temperature,
    ood_threshold=threshold,
    prediction_sets=sets,
    overwrite=True,  # this guide may run again
)
for name, (dtype, shape) in signature.items():
    print(f"{name:>26}: {dtype:<8} {shape}")

"""
## Reload in a fresh process and query

A serving client knows nothing of Keras: the script below imports TensorFlow
only. It loads the SavedModel, sends the test digits and the clothes through
`serving_default`, and, to show what a TensorFlow Serving client sends and
receives, also answers one `PredictRequest` built with the
`tensorflow-serving-api` protos (`pip install tensorflow-serving-api`,
also the `serving` extra of this package): the request is serialised and
parsed as on the wire, its tensors go through the same signature, and the
answer is read back from a `PredictResponse`, as TensorFlow Serving would
do with it.
"""

CLIENT = '''
import json, sys
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

export_path, inputs_path = sys.argv[1:]
serving = tf.saved_model.load(export_path).signatures["serving_default"]
inputs = np.load(inputs_path)
answers = {}
for name in ("digits", "clothes"):
    outputs = serving(inputs=tf.constant(inputs[name]))
    answers[name] = {key: value.numpy().tolist() for key, value in outputs.items()}

request = predict_pb2.PredictRequest()
request.model_spec.name = "digits"
request.model_spec.signature_name = "serving_default"
request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(inputs["digits"][:8]))
request = predict_pb2.PredictRequest.FromString(request.SerializeToString())
outputs = serving(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
response = predict_pb2.PredictResponse()
for key, value in outputs.items():
    response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
response = predict_pb2.PredictResponse.FromString(response.SerializeToString())
answers["request"] = {k: tf.make_ndarray(v).tolist() for k, v in response.outputs.items()}
direct = serving(inputs=tf.constant(inputs["digits"][:8]))
answers["direct"] = {key: value.numpy().tolist() for key, value in direct.items()}
print(json.dumps(answers))
'''

(workspace / "client.py").write_text(CLIENT)
np.savez(workspace / "inputs.npz", digits=x_test, clothes=x_unknown)
completed = subprocess.run(
    [sys.executable, str(workspace / "client.py"), str(export_path), str(workspace / "inputs.npz")],
    capture_output=True, text=True, check=True,
    env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
)
answers = json.loads(completed.stdout.splitlines()[-1])
digits = {key: np.array(value) for key, value in answers["digits"].items()}
clothes = {key: np.array(value) for key, value in answers["clothes"].items()}

"""
## Read the answers

First, the served probabilities are the Keras model's. Then what
`is_unknown` says: about 5% of the test digits are flagged (the threshold's
promise, on average over held-out sets), and far more of the clothes. The
calibrated confidence is lower on the clothes too.

The prediction sets keep their promise on digits (90% coverage), but their
size is no OOD detector. LAC sets hold every class whose probability passes
one fitted cut: a weak model (this guide's fast mode) is unsure on clothes
and gives them larger sets; an accurate one (the full mode) set the cut so
high that most clothes, on which no class is that likely, get an **empty**
set. An empty set says "none of the classes" and is worth reading as a
flag of its own.
"""

keras_probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(test_logits))
gap = float(np.max(np.abs(digits["probabilities"] - keras_probabilities)))
# The same eight images called directly: the protos carry the tensors unchanged.
request_matches = all(
    np.array_equal(answers["request"][key], answers["direct"][key]) for key in answers["direct"]
)
flagged_digits = float(np.mean(digits["is_unknown"]))
flagged_clothes = float(np.mean(clothes["is_unknown"]))
coverage = float(np.mean(digits["prediction_set"][np.arange(len(y_test)), y_test]))
print(f"Largest gap, served vs Keras probabilities: {gap:.2e}")
print(f"PredictRequest answers equal the direct call: {request_matches}")
print(f"is_unknown on test digits: {flagged_digits:.3f}  (threshold alpha = {ALPHA_OOD})")
print(f"is_unknown on clothes:     {flagged_clothes:.3f}")
print(f"Calibrated confidence, digits / clothes: "
      f"{digits['calibrated_confidence'].mean():.3f} / {clothes['calibrated_confidence'].mean():.3f}")
print(f"Prediction sets: coverage {coverage:.3f} on digits (1 - alpha = {1 - ALPHA_SETS})")
for name, answer in (("digits", digits), ("clothes", clothes)):
    sizes = answer["prediction_set_size"]
    print(f"  on {name:<7}: mean size {sizes.mean():.2f}, empty {np.mean(sizes == 0):.3f}")

# What the printed numbers must show (checked in the fast test run too).
binomial = 3 * np.sqrt(ALPHA_OOD * (1 - ALPHA_OOD) / NUM_TEST)
assert gap < 1e-5 and request_matches
assert np.array_equal(
    digits["is_unknown"], keras.ops.convert_to_numpy(threshold(test_logits))
)
assert flagged_digits <= ALPHA_OOD + binomial, flagged_digits
assert flagged_clothes > flagged_digits + 0.1, (flagged_clothes, flagged_digits)
assert coverage >= 1 - ALPHA_SETS - 3 * np.sqrt(ALPHA_SETS * (1 - ALPHA_SETS) / NUM_TEST)
assert clothes["calibrated_confidence"].mean() < digits["calibrated_confidence"].mean()
assert np.array_equal(digits["prediction_set_size"], digits["prediction_set"].sum(axis=1))

"""
## Serve it with TensorFlow Serving

**Not runnable on our machines**: the model server is not a Debian package,
and neither Google's apt repository nor Docker Hub can be reached from them.
These are the commands of the TensorFlow Serving documentation, run from
the folder this guide ran in (`serving_guide/digits` holds version `1/`).

```shell
# Docker: REST on 8501, gRPC on 8500.
docker run -t --rm -p 8500:8500 -p 8501:8501 \\
    --mount type=bind,source="$PWD/serving_guide/digits",target=/models/digits \\
    -e MODEL_NAME=digits tensorflow/serving

# Or the binary (apt package tensorflow-model-server from Google's repository):
tensorflow_model_server --port=8500 --rest_api_port=8501 \\
    --model_name=digits --model_base_path="$PWD/serving_guide/digits"

# A REST request: one 28x28x1 image per instance, answers keyed as above.
curl -d '{"signature_name": "serving_default", "instances": [...]}' \\
    http://localhost:8501/v1/models/digits:predict
```

A gRPC client sends the `PredictRequest` built in the client script above:

```python
import grpc
from tensorflow_serving.apis import prediction_service_pb2_grpc

stub = prediction_service_pb2_grpc.PredictionServiceStub(
    grpc.insecure_channel("localhost:8500"))
response = stub.Predict(request, 10.0)  # seconds
is_unknown = tf.make_ndarray(response.outputs["is_unknown"])
```

A model exported under JAX runs on the platform it was lowered for: pass
`platforms=("cpu", "cuda")` to `export_serving` to serve it on GPUs too.

## Results we measured

One full run of this guide (JAX backend, CPU, about two minutes; 20,000
training digits, 10 epochs, the default-length warm-up of 2,500 x 128 noise
images; 5,000 held-out digits, 5,000 test digits, 5,000 clothes):

| | digits (test) | clothes |
|---|---|---|
| `is_unknown` | 0.049 | 0.582 |
| mean `calibrated_confidence` | 0.964 | 0.745 |
| prediction sets: mean size / share empty | 0.91 / 0.091 | 0.37 / 0.626 |

Test accuracy 0.966, fitted temperature 1.485, coverage of the sets 0.902;
served and Keras probabilities differ by at most 9.5e-7, and the
`PredictRequest` answers equal direct calls bit for bit. The threshold
flagged 4.9% of the digits, inside its 5% promise, but let 42% of the
clothes through: a small MLP's energy score separates the two sets only
partly. The fast mode (2,000 training digits, two epochs) prints other
numbers; its assertions check what every run must show.

## What's next

`docs/DISTRIBUTED.md` shows the warm-up and the calibration metrics on
several GPUs and hosts; `guides/detecting_unknown_inputs.py` compares the
OOD scores and what the warm-up does to them.
"""
