"""How confident a model is on inputs that carry no information.

An untrained network is typically far more confident than chance on noise
and prefers some classes over others; after the warm-up both should be at
chance. `noise_confidence` measures the two, in inference mode.
"""

import dataclasses
import math

import numpy as np

from keras_noisewarm import classifier
from keras_noisewarm import noise


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
    distribution="gaussian",
    mean=0.0,
    std=1.0,
    from_logits=None,
    input_shape=None,
    seed=12345,
):
    """Measures a classifier's confidence and class bias on fresh noise.

    Args:
        model: A Keras classifier.
        num_examples: Number of noise examples to evaluate.
        batch_size: Batch size of the predictions.
        distribution: `"gaussian"` or `"uniform"`, see `noise_dataset`.
        mean: Mean of the noise.
        std: Standard deviation of the noise.
        from_logits: Whether the model outputs logits; `None` detects it.
        input_shape: Shape of one example; `None` reads `model.inputs`.
        seed: Seed of the noise, distinct from the warm-up's default stream.

    Returns:
        A `NoiseConfidence`. For a per-pixel head every position counts as one
        prediction.

    Example:

    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> result = noise_confidence(model, num_examples=64)
    >>> round(result.chance, 3)
    0.333
    """
    noise._check_positive_int("num_examples", num_examples)
    noise._check_positive_int("batch_size", batch_size)
    spec = classifier.inspect_classifier(
        model, input_shape=input_shape, from_logits=from_logits
    )
    stream = noise.noise_dataset(
        spec.input_shape,
        spec.num_classes,
        batch_size=batch_size,
        distribution=distribution,
        mean=mean,
        std=std,
        seed=seed,
        dtype=spec.input_dtype,
    )
    inputs_only = stream.map(lambda inputs, labels: inputs).take(
        math.ceil(num_examples / batch_size)
    )
    outputs = model.predict(inputs_only, verbose=0)[:num_examples]
    probabilities = classifier.class_probabilities(outputs, spec)
    probabilities = probabilities.reshape(-1, spec.num_classes)
    predicted = probabilities.argmax(axis=-1)
    return NoiseConfidence(
        mean_confidence=float(probabilities.max(axis=-1).mean()),
        class_frequencies=np.bincount(predicted, minlength=spec.num_classes)
        / len(predicted),
        chance=1.0 / spec.num_classes,
    )
