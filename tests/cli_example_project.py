"""A user's project for the `keras-noisewarm compare` test: a model and its data."""

import keras
import numpy as np


def build_model():
    model = keras.Sequential([
        keras.Input((6,)),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(3),
    ])
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def load_data():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 2, size=(3, 6))

    def split(size):
        labels = rng.integers(0, 3, size=size)
        return (centres[labels] + rng.normal(size=(size, 6))).astype("float32"), labels

    return split(120), split(60), (4 * rng.normal(size=(30, 6))).astype("float32")
