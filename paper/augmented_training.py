"""Training as the authors' CIFAR-10 code does it, and a store of finished runs.

Shared by the ResNet-18 from-scratch comparison (`paper.resnet18`) and the
fine-tuning experiment (`paper.finetune`):

- `augment`: random crop with padding 4 and horizontal flip, drawn from a
  seeded generator, so that both arms of a seed see the very same images in
  the same order (one `fit` per epoch on that epoch's augmented, permuted
  copy; a keras-hub model would not shuffle arrays itself anyway).
- `sgd`: SGD with momentum and a cosine decay over the whole training, with
  PyTorch's weight decay translated to Keras's (see its docstring).
- `RunFiles`: one JSON file per finished run, under a folder named after the
  settings, so a rerun trains only what is missing and never mixes settings.
"""

import dataclasses
import hashlib
import json
import math
import pathlib
import time

import keras
import numpy as np

from keras_noisewarm import compare

# Seed offsets of the data order and augmentation (as in compare_warmup).
DATA_ORDER_SEED_OFFSET = compare.DATA_ORDER_SEED_OFFSET


def augment(images, rng, padding=4):
    """A random crop (after zero padding) and a random horizontal flip of each image.

    The images are already normalised, so the padding is the mean colour
    (zero); torchvision pads black before normalising, a small difference.

    Args:
        images: `(N, height, width, channels)` float array.
        rng: A `numpy.random.Generator`.
        padding: Pixels of padding on each side (4 in the authors' code).

    Returns:
        The augmented images, same shape.
    """
    count, height, width, _ = images.shape
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    top = rng.integers(0, 2 * padding + 1, count)
    left = rng.integers(0, 2 * padding + 1, count)
    rows = top[:, None] + np.arange(height)
    columns = left[:, None] + np.arange(width)
    flip = rng.random(count) < 0.5
    columns = np.where(flip[:, None], columns[:, ::-1], columns)
    return padded[np.arange(count)[:, None, None], rows[:, :, None], columns[:, None, :]]


def steps_per_epoch(num_examples, batch_size):
    return math.ceil(num_examples / batch_size)


def sgd(learning_rate, total_steps, momentum=0.9, torch_weight_decay=1e-4):
    """SGD with momentum, cosine decay to 0 over `total_steps`, and weight decay.

    PyTorch's SGD adds `weight_decay * w` to the gradient before momentum,
    so with momentum `m` a weight shrinks by `lr * weight_decay / (1 - m)`
    per step once the momentum has built up; Keras's SGD shrinks it by
    `lr * weight_decay` per step outside the momentum. The Keras weight
    decay here is therefore `torch_weight_decay / (1 - momentum)` (1e-3 for
    the authors' 1e-4 under momentum 0.9).
    """
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    return keras.optimizers.SGD(schedule, momentum=momentum, weight_decay=torch_weight_decay / (1.0 - momentum))


def train(model, images, labels, epochs, batch_size, seed):
    """Trains `model` for `epochs` epochs of augmented, shuffled images.

    Returns:
        `(seconds, losses)`: the wall-clock time of the `fit` calls and the
        training loss of each epoch.
    """
    rng = np.random.default_rng(seed + DATA_ORDER_SEED_OFFSET)
    seconds, losses = 0.0, []
    for _ in range(epochs):
        order = rng.permutation(len(images))
        batch = augment(images[order], rng)
        start = time.perf_counter()
        history = model.fit(batch, labels[order], batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        seconds += time.perf_counter() - start
        losses.append(float(history.history["loss"][-1]))
    return seconds, losses


def predict(model, images):
    return np.asarray(model.predict(images, batch_size=500, verbose=0), "float32")


def training_mode_confidence(model, input_shape, num_examples=1024, seed=4321):
    """Mean top-class probability on N(0, 1) noise with BatchNorm on batch statistics.

    The confidence a network starts its data training with (an untrained
    network's moving statistics, 0 and 1, say nothing about it). The model's
    weights and moving statistics are restored afterwards.
    """
    weights = model.get_weights()
    noise = np.random.default_rng(seed).standard_normal((num_examples,) + tuple(input_shape)).astype("float32")
    confidences = []
    for start in range(0, num_examples, 256):
        logits = model(noise[start:start + 256], training=True)
        probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(logits))
        confidences.append(probabilities.max(axis=-1))
    model.set_weights(weights)
    return float(np.concatenate(confidences).mean())


class RunFiles:
    """Finished runs: `<cache>/<prefix>-<backend>-<digest>/<run>.json`.

    The folder's `settings.json` holds the settings the digest was made
    from; a folder of other settings is never opened, since its name differs.
    """

    def __init__(self, cache, prefix, settings):
        settings = json.loads(json.dumps(
            dict(settings, backend=keras.backend.backend()), sort_keys=True, default=repr))
        digest = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
        self.folder = pathlib.Path(cache) / f"{prefix}-{keras.backend.backend()}-{digest}"
        self.settings = settings

    def path(self, name, suffix=".json"):
        return self.folder / f"{name}{suffix}"

    def has(self, name):
        return self.path(name).is_file()

    def load(self, name):
        return json.loads(self.path(name).read_text())

    def save(self, name, result):
        self.folder.mkdir(parents=True, exist_ok=True)
        settings = self.folder / "settings.json"
        if not settings.exists():
            settings.write_text(json.dumps(self.settings, indent=1, sort_keys=True))
        self.path(name).write_text(json.dumps(result, indent=1))


def settings_of(scale):
    """A dataclass's fields, for `RunFiles`."""
    return dataclasses.asdict(scale)
