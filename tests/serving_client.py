"""A fresh process that reads an exported SavedModel as its users would.

Run by tests/test_serving.py as
`python tests/serving_client.py SAVED_MODEL QUERIES.npz RESULT_FOLDER`; it
imports TensorFlow only (no Keras backend, no keras_noisewarm), and writes
to RESULT_FOLDER:

- `outputs.npz`: the `serving_default` outputs for the first row of the
  queries and for all of them (keys `batch1/<name>`, `batch<N>/<name>`), and
  those of the same rows answered through TensorFlow Serving protos
  (`grpc/<name>`): a `PredictRequest` built as a client builds it,
  serialised and parsed as on the wire, its tensors converted and answered
  by the signature, and the answer sent back as a `PredictResponse`;
- `signatures.json`: each signature's input and output names, dtypes and
  shapes as `tf.saved_model.load` reports them, and the text printed by
  `saved_model_cli show --all` (run in this process).
"""

import contextlib
import io
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import predict_pb2  # noqa: E402


def saved_model_cli(saved_model):
    """The text `saved_model_cli show --all` prints, and its exit status.

    The `saved_model_cli` command is a console script that calls this same
    `main` with its arguments; calling it here spares a second TensorFlow
    start-up.
    """
    from tensorflow.python.tools import saved_model_cli as cli

    printed = io.StringIO()
    sys.argv = ["saved_model_cli", "show", "--dir", saved_model, "--all"]
    status = 0
    with contextlib.redirect_stdout(printed):
        try:
            status = cli.main() or 0
        except SystemExit as exit:
            status = exit.code or 0
    return status, printed.getvalue()


def describe(signature):
    _, inputs = signature.structured_input_signature
    return {
        "inputs": {
            name: [spec.dtype.name, spec.shape.as_list()] for name, spec in inputs.items()
        },
        "outputs": {
            name: [spec.dtype.name, spec.shape.as_list()]
            for name, spec in signature.structured_outputs.items()
        },
    }


def answer_over_protos(signature, rows):
    """What a TensorFlow Serving client gets back for a Predict call."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "classifier"
    request.model_spec.signature_name = "serving_default"
    request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(rows))
    received = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    inputs = {
        name: tf.constant(tf.make_ndarray(proto)) for name, proto in received.inputs.items()
    }
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(received.model_spec)
    for name, value in signature(**inputs).items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    response = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def main(saved_model, queries, results):
    results = pathlib.Path(results)
    queries = np.load(queries)["inputs"]
    loaded = tf.saved_model.load(saved_model)
    serving = loaded.signatures["serving_default"]
    arrays = {}
    for rows in (queries[:1], queries):
        for name, value in serving(inputs=tf.constant(rows)).items():
            arrays[f"batch{len(rows)}/{name}"] = value.numpy()
    for name, value in answer_over_protos(serving, queries).items():
        arrays[f"grpc/{name}"] = value
    np.savez(results / "outputs.npz", **arrays)
    signatures = {name: describe(signature) for name, signature in loaded.signatures.items()}
    status, printed = saved_model_cli(saved_model)
    signatures["saved_model_cli"] = {"returncode": status, "stdout": printed}
    (results / "signatures.json").write_text(json.dumps(signatures, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
