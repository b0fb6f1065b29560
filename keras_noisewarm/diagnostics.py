"""How confident a model is on inputs that carry no information.

An untrained network is typically far more confident than chance on noise
and prefers some classes over others; after the warm-up both should be at
chance. `noise_confidence` measures the two, in inference mode.
"""

import dataclasses
import math

import keras
import numpy as np

from keras_noisewarm import inspection
from keras_noisewarm import noise as noise_lib
from keras_noisewarm import outputs as outputs_lib
from keras_noisewarm import shapes as shapes_lib
from keras_noisewarm import shared_layers
from keras_noisewarm import tasks as tasks_lib
from keras_noisewarm import validation
from keras_noisewarm.noise import stream as stream_lib


@dataclasses.dataclass(frozen=True)
class NoiseConfidence:
    """Confidence of a classifier on noise.

    Attributes:
        mean_confidence: Mean of the largest class probability.
        class_frequencies: Fraction of examples predicted as each class.
        chance: `1 / num_classes`, the confidence of a model that knows
            nothing.
    """

    mean_confidence: float
    class_frequencies: np.ndarray
    chance: float

    @property
    def max_class_frequency(self):
        """Share of the most predicted class (`chance` when unbiased)."""
        return float(np.max(self.class_frequencies))

    def __str__(self):
        return (
            f"mean confidence {self.mean_confidence:.3f} (chance {self.chance:.3f}), "
            f"most predicted class takes {self.max_class_frequency:.1%} of predictions"
        )


def noise_confidence(
    model,
    num_examples=4096,
    batch_size=256,
    noise=None,
    from_logits=None,
    input_shape=None,
    seed=12345,
    output=None,
    distribution=None,
    mean=None,
    std=None,
):
    """Measures a classifier's confidence and class bias on fresh noise.

    Args:
        model: A Keras classifier (one input or several).
        num_examples: Number of noise examples to evaluate.
        batch_size: Batch size of the predictions.
        noise: The noise family (or one per input), as for `warmup`; `None`
            gives each input its default (see `NoiseWarmup`).
        from_logits: Whether the model outputs logits; `None` detects it.
        input_shape: Shape of one example; `None` reads `model.inputs`.
        seed: Seed of the noise, distinct from the warm-up's default stream.
        output: For a model with several outputs, the index (or name) of
            the classification output to measure.
        distribution: Deprecated, use `noise=`.
        mean: Deprecated, use `noise=`.
        std: Deprecated, use `noise=`.

    Returns:
        A `NoiseConfidence`. For a per-pixel head every position counts as one
        prediction.

    Example:

    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> result = noise_confidence(model, num_examples=64)
    >>> round(result.chance, 3)
    0.333
    """
    validation.check_int("num_examples", num_examples)
    validation.check_int("batch_size", batch_size)
    if (distribution, mean, std) != (None, None, None):
        if noise is not None:
            raise ValueError("Give `noise=` or the older `distribution`, `mean` and `std`, not both.")
        noise = stream_lib.legacy_family(distribution, mean, std)
    spec = inspection.inspect_model(model, input_shape=input_shape, from_logits=from_logits, noise=noise)
    index = _output_index(spec, output, model)
    task = spec.tasks[index]
    if not isinstance(task, (tasks_lib.Classification, tasks_lib.Binary)):
        raise ValueError(
            f"noise_confidence measures a classifier; output {index} of model "
            f"{model.name!r} is a {task.name} output."
        )
    leaves, pack = shapes_lib.flatten(spec.input_shape)
    stream = noise_lib.noise_dataset(
        spec.input_shape, num_classes=2, batch_size=batch_size,
        noise=pack(list(spec.families)) if len(leaves) > 1 else spec.families[0],
        seed=seed, dtype=pack(list(spec.input_dtypes)) if len(leaves) > 1 else spec.input_dtypes[0],
    )
    # A one-element tuple: `predict` would read a tuple of several inputs
    # as (x, y).
    inputs_only = stream.map(lambda inputs, labels: (inputs,)).take(
        math.ceil(num_examples / batch_size)
    )
    # Noise is drawn for the model's own inputs: a keras-hub Task's
    # preprocessor must not rescale it again, as the warm-up never does.
    predictions = shared_layers.predict_model_inputs(model, inputs_only, verbose=0)
    predictions = keras.tree.flatten(predictions)[index][:num_examples]
    probabilities = outputs_lib.probabilities_of(predictions, task.from_logits)
    num_classes = probabilities.shape[-1]
    probabilities = probabilities.reshape(-1, num_classes)
    predicted = probabilities.argmax(axis=-1)
    return NoiseConfidence(
        mean_confidence=float(probabilities.max(axis=-1).mean()),
        class_frequencies=np.bincount(predicted, minlength=num_classes) / len(predicted),
        chance=1.0 / num_classes,
    )


def _output_index(spec, output, model):
    if output is None:
        if not spec.single_output:
            raise ValueError(
                f"Model {model.name!r} has {len(spec.tasks)} outputs: pass output= "
                "(an index) to say which classifier to measure."
            )
        return 0
    output = validation.check_int("output", output, minimum=0)
    if output >= len(spec.tasks):
        raise ValueError(f"output={output}, but the model has {len(spec.tasks)} outputs.")
    return output
