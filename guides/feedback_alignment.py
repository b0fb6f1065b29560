"""
Title: Learning without weight transport: feedback alignment and noise pretraining
Author: keras-noisewarm developers
Date created: 2026/12/01
Last modified: 2026/12/01
Description: Train an MLP by feedback alignment with `FeedbackAlignmentDense`, watch it align, and pretrain it on noise.
Accelerator: None
"""

"""
## Introduction

Backpropagation sends each layer's error back to the layer below through the
transpose of the layer's own forward weights, `W^T`. A brain cannot do that:
the synapses carrying signals backwards are not the ones carrying them
forwards, and nothing tells them the forward weights (the *weight transport
problem*). **Feedback alignment** (Lillicrap et al., Nature Communications
2016) sends the error through a fixed random matrix `B` of the same shape
instead. The forward pass is unchanged, and so are the weight updates given
the error each layer receives; only the route of the error differs. It still
learns, because the forward weights come to *align* with `B`, but slowly.

Cheon, Lee & Paik (NeurIPS 2024) pretrain such networks on random noise,
Gaussian inputs with random labels, before they see data, and report that
the noise pretraining aligns the forward weights with the feedback matrices,
so feedback alignment then learns faster, closer to backpropagation, with
weights of lower effective rank.

This guide shows the tools keras-noisewarm has for this:

- `keras_noisewarm.feedback_alignment.FeedbackAlignmentDense`, a `Dense`
  layer whose backward pass uses `B`;
- `to_feedback_alignment`, which turns an existing MLP into its
  feedback-alignment twin;
- the diagnostics (`weight_feedback_angles`, `update_angles`,
  `effective_rank`) and the `FeedbackAlignmentMonitor` callback that logs
  them every epoch;
- noise pretraining with the same `keras_noisewarm.warmup` call used for
  calibration.
"""

"""
## Setup
"""

import os

import keras
import numpy as np

import keras_noisewarm
from keras_noisewarm import feedback_alignment as fa
from keras_noisewarm.callbacks import FeedbackAlignmentMonitor

# The guide runs as a test in a fast mode with smaller sizes.
FAST = os.environ.get("KERAS_NOISEWARM_FAST") == "1"
NUM_TRAIN = 1_000 if FAST else 20_000
NUM_TEST = 500 if FAST else 10_000
EPOCHS = 1 if FAST else 5
WIDTH = 64 if FAST else 256
# The recipe chosen on held-out MNIST training images in our experiment
# (paper/feedback_alignment.py): 4,000 noise steps of Adam 1e-4, then
# Adam 3e-4 on the data.
NOISE_STEPS = 20 if FAST else 4_000
NOISE_LEARNING_RATE = 1e-4
LEARNING_RATE = 3e-4
LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

keras.utils.set_random_seed(0)

"""
MNIST, scaled to zero mean and unit variance so that its pixels share the
scale of the N(0, 1) noise we will pretrain on. (`load_mnist` reads the
official files from `$KERAS_NOISEWARM_DATA/mnist` when that variable is
set, and downloads them with `keras.datasets` otherwise.)
"""

(x_train, y_train), (x_test, y_test) = keras_noisewarm.datasets.load_mnist()
x_train = x_train[:NUM_TRAIN].astype("float32") / 255.0
x_test = x_test[:NUM_TEST].astype("float32") / 255.0
mean, std = x_train.mean(), x_train.std()
x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
y_train, y_test = y_train[:NUM_TRAIN], y_test[:NUM_TEST]
print("training images:", x_train.shape, "test images:", x_test.shape)

"""
## A backpropagation MLP and its feedback-alignment twin

We build an ordinary MLP, then turn it into its twin: every `Dense` layer
becomes a `FeedbackAlignmentDense` with the same kernel and bias and a new
random feedback matrix, drawn from N(0, 2 / fan_in) by default (any Keras
initializer can be given). The `seed` makes the feedback matrices
reproducible; each layer gets its own.
"""


def build_mlp(seed):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [keras.Input((28, 28)), keras.layers.Flatten()]
        + [keras.layers.Dense(WIDTH, activation="relu", kernel_initializer="he_normal",
                              name=f"hidden_{i}") for i in (1, 2, 3)]
        + [keras.layers.Dense(10, kernel_initializer="he_normal", name="output")],
        name="mlp",
    )


backprop_model = build_mlp(seed=0)
fa_model = fa.to_feedback_alignment(backprop_model, seed=1)
print([type(layer).__name__ for layer in fa_model.layers])

"""
The twin computes exactly what the original computes: only the backward
pass differs.
"""

same = np.array_equal(backprop_model.predict(x_test[:256], verbose=0),
                      fa_model.predict(x_test[:256], verbose=0))
print("identical outputs:", same)
assert same

"""
The feedback matrix is a non-trainable weight of the layer: no optimizer
touches it, and it is saved and reloaded with the model, exactly.
"""

layer = fa_model.get_layer("hidden_2")
print([(w.name, tuple(w.shape), w.trainable) for w in layer.weights])
fa_model.save("fa_mlp.keras")
reloaded = keras.saving.load_model("fa_mlp.keras")
assert np.array_equal(reloaded.get_layer("hidden_2").feedback.numpy(), layer.feedback.numpy())

"""
## How aligned is a random network?

`weight_feedback_angles` gives, for every feedback layer, the angle between
its forward weights `W` and its feedback matrix `B` (read as long vectors).
Two independent random matrices of this size are all but orthogonal: about
90 degrees. The first layer's `B` sends the error to the inputs, which have
nothing to learn, so its angle never matters (`feedback_is_used` says which
do).

`update_angles` compares, on a batch, the update feedback alignment makes to
each weight matrix with the true backpropagation gradient of the same
weights. The output layer gets its error directly, so its update *is* the
gradient (0 degrees); below it, a random `B` sends errors that are
uncorrelated with the true ones.
"""

fa_model.compile(keras.optimizers.Adam(LEARNING_RATE), LOSS, metrics=["accuracy"])
batch = (x_train[:512], y_train[:512])


def show(title, model):
    angles = fa.weight_feedback_angles(model)
    updates = fa.update_angles(model, *batch)
    print(title)
    for name in angles:
        print(f"  {name:>8}: W vs B {angles[name]:6.2f} deg, update vs gradient "
              f"{updates[name]:6.2f} deg, feedback used: {fa.feedback_is_used(model)[name]}")
    return angles, updates


initial_angles, initial_updates = show("Random initialisation:", fa_model)
assert all(80 < angle < 100 for angle in initial_angles.values())
assert abs(initial_updates["output"]) < 1e-3

"""
## Noise pretraining, through the warm-up API

A feedback-alignment model is a Keras model like any other, so
`keras_noisewarm.warmup` pretrains it on noise as it would any classifier:
Gaussian inputs of the model's input shape with uniformly random labels.
The warm-up trains through the model's own layers, so the noise
pretraining, too, sends its errors through the feedback matrices.

We give every setting explicitly: 4,000 steps of 128 noise images, Adam at
1e-4, the recipe our experiment (`python -m paper reproduce
feedback_alignment`, see docs/RESULTS.md) chose on held-out MNIST training
images. A learning rate of 1e-2 made feedback alignment learn *worse* than
without noise there: measure before trusting a recipe.
"""

noise_model = fa.to_feedback_alignment(backprop_model, seed=1)  # the same W and B
keras_noisewarm.warmup(
    noise_model, num_classes=10, steps=NOISE_STEPS, batch_size=128, optimizer="adam",
    learning_rate=NOISE_LEARNING_RATE, seed=2, verbose=0,
)
noise_model.compile(keras.optimizers.Adam(LEARNING_RATE), LOSS, metrics=["accuracy"])
noise_angles, noise_updates = show("After noise pretraining:", noise_model)
for name, before in zip(initial_angles, fa.feedback_layers(fa_model)):
    assert np.array_equal(noise_model.get_layer(name).feedback.numpy(), before.feedback.numpy())

"""
The feedback matrices did not move (the asserts above check it); the
forward weights did, and so did their angles to `B`. How far they move
depends on the length and learning rate of the pretraining: measure it, as
below, rather than assume it.

## Training the three and watching them align

`FeedbackAlignmentMonitor` writes the angles and the effective ranks into
each epoch's logs, so `History`, the progress bar and `CSVLogger` see them:
`fa_weight_angle` (mean over the layers whose feedback is used),
`fa_update_angle` (mean over the layers whose update passes through a
feedback matrix), `fa_effective_rank`, and one value per layer.
The effective rank (Roy & Vetterli, 2007) is `exp` of the entropy of the
normalised singular values: between 1 and the matrix's smaller side.
"""

backprop_model.compile(keras.optimizers.Adam(LEARNING_RATE), LOSS, metrics=["accuracy"])
histories = {}
for title, model in (("backprop", backprop_model), ("FA", fa_model),
                     ("FA + noise", noise_model)):
    callbacks = [] if title == "backprop" else [FeedbackAlignmentMonitor(data=batch)]
    keras.utils.set_random_seed(3)  # the same batches for the three
    histories[title] = model.fit(
        x_train, y_train, epochs=EPOCHS, batch_size=128, verbose=0,
        validation_data=(x_test, y_test), callbacks=callbacks,
    ).history

print(f"{'epoch':>5} " + " ".join(f"{title:>12}" for title in histories))
for epoch in range(EPOCHS):
    print(f"{epoch + 1:>5} " + " ".join(
        f"{history['val_accuracy'][epoch]:12.4f}" for history in histories.values()))
for title in ("FA", "FA + noise"):
    history = histories[title]
    print(f"{title}: W vs B {history['fa_weight_angle'][-1]:.2f} deg, update vs gradient "
          f"{history['fa_update_angle'][-1]:.2f} deg, effective rank "
          f"{history['fa_effective_rank'][-1]:.1f} after training")

"""
The printed values are those of the models as they stand: the monitor's
last epoch equals a direct measurement.
"""

last = histories["FA"]
used = [name for name, is_used in fa.feedback_is_used(fa_model).items() if is_used]
direct = np.mean([fa.weight_feedback_angles(fa_model)[name] for name in used])
assert abs(last["fa_weight_angle"][-1] - direct) < 1e-6
ranks = fa.weight_effective_ranks(fa_model)
assert abs(last["fa_effective_rank"][-1] - np.mean(list(ranks.values()))) < 1e-6
assert all(len(history["val_accuracy"]) == EPOCHS for history in histories.values())

"""
One seed and a few epochs prove nothing either way. The reproduction in
`paper/feedback_alignment.py` runs the three arms over eight paired seeds
on MNIST and Fashion-MNIST, chooses its learning rates and the noise
pretraining on held-out training images, and reports which of the paper's
directions hold in our measurements, with paired Wilcoxon tests:

```
KERAS_BACKEND=jax python -m paper reproduce feedback_alignment --output docs
```

## Using the layer directly

`FeedbackAlignmentDense` takes `Dense`'s arguments plus
`feedback_initializer`, and works in `fit` on the TensorFlow, JAX and
PyTorch backends, compiled (XLA, `jax.jit`: Keras's default on TensorFlow
and JAX) or eager (the default on PyTorch). For your own layers,
`feedback_matmul(inputs, kernel, feedback)` is the product with the
feedback-alignment gradient (pass tensors, e.g. `keras.ops.copy(variable)`).
`to_backpropagation` turns a feedback-alignment model back into plain
`Dense` layers with the same weights.
"""

model = keras.Sequential([
    keras.Input((16,)),
    fa.FeedbackAlignmentDense(32, activation="relu"),
    fa.FeedbackAlignmentDense(
        4, feedback_initializer=keras.initializers.RandomUniform(-0.1, 0.1)),
])
model.compile("adam", LOSS)
rng = np.random.default_rng(0)
model.fit(rng.standard_normal((64, 16)).astype("float32"), rng.integers(0, 4, 64),
          epochs=1, verbose=0)
print([type(layer).__name__ for layer in fa.to_backpropagation(model).layers])
