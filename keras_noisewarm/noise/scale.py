"""Noise on the scale the model expects: read off its own preprocessing, or off data.

The paper draws its `N(0, 1)` noise in the *normalised* input space, where
the data have mean 0 and standard deviation 1 in every channel. A model fed
raw inputs that rescales or normalises them itself (`Rescaling(1 / 255)` as
its first layer, as keras.applications and many tutorials do) would see
`N(0, 1)` raw noise as an almost constant image. So the default noise of a
float input is chosen, in this order:

1. from a data sample, when the user gives one (`data=`): Gaussian noise with
   the data's per-channel mean and standard deviation (`DataMatched`);
2. from the model's first layer, when it is a `Normalization` layer (adapted
   or given its mean and variance): Gaussian noise with that mean and
   standard deviation, which the layer maps to `N(0, 1)`;
3. from a first `Rescaling(scale, offset)` layer: Gaussian noise that the
   layer maps to `N(0, 1)`, mean `-offset / scale` and standard deviation
   `1 / |scale|`;
4. otherwise `N(0, 1)`: the model is taken to expect normalised inputs.

`default_noise` returns the family and a sentence saying which rule chose
it, which the warm-up reports.
"""

import keras
import numpy as np

from keras_noisewarm.noise import continuous


def default_noise(example_shape, consumer=None, data=None):
    """The default noise family of one float input, and why.

    Args:
        example_shape: Shape of one example of the input.
        consumer: The first layer that reads the input, or `None`.
        data: A sample of the input's training data, or `None`.

    Returns:
        `(family, description)`.

    Example:

    >>> rescaled = keras.layers.Rescaling(1 / 255)
    >>> family, why = default_noise((32, 32, 3), consumer=rescaled)
    >>> round(family.std), why.split(":")[0]
    (255, "N(0, 1) after the model's Rescaling layer")
    """
    if data is not None:
        family = continuous.DataMatched(data)
        return family, "Gaussian with the data sample's per-channel mean and standard deviation"
    if isinstance(consumer, keras.layers.Normalization) and consumer.built:
        mean = np.ravel(keras.ops.convert_to_numpy(consumer.mean)).astype("float64")
        std = np.sqrt(np.ravel(keras.ops.convert_to_numpy(consumer.variance)).astype("float64"))
        std = np.maximum(std, 1e-6 * max(float(std.max()), 1.0))
        if mean.size == 1:
            family = continuous.Gaussian(float(mean[0]), float(std[0]))
        elif mean.size == example_shape[-1]:
            family = continuous.Gaussian(mean, std)
        else:
            return continuous.Gaussian(), "N(0, 1): the Normalization layer's statistics do not match the last axis"
        return family, "N(0, 1) after the model's Normalization layer: Gaussian with its mean and standard deviation"
    if isinstance(consumer, keras.layers.Rescaling):
        scale = np.ravel(np.asarray(consumer.scale, dtype="float64"))
        offset = np.ravel(np.asarray(consumer.offset, dtype="float64"))
        if scale.size == 1 and offset.size == 1 and scale[0] != 0:
            family = continuous.Gaussian(-offset[0] / scale[0], 1.0 / abs(scale[0]))
            return family, (
                f"N(0, 1) after the model's Rescaling layer: Gaussian with mean "
                f"{family.mean:g} and standard deviation {family.std:g}"
            )
    return continuous.Gaussian(), "N(0, 1): the model is taken to expect normalised inputs"
