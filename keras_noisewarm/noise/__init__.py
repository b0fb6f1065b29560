"""Noise families for the warm-up, and the `tf.data` noise stream.

A family (like a `keras.initializers` object) is a distribution of noise
inputs that samples both inside the `tf.data` stream and inside a train
step, and serialises with `get_config`:

- `Gaussian(mean, std)`: the paper's noise, `N(0, 1)` by default;
- `Uniform(mean, std)`: the same mean and spread, uniform;
- `PinkNoise(mean, std, exponent)`: structured noise, correlated over space
  or time with a `1/f` spectrum;
- `DataMatched(sample)`: Gaussian noise with a data sample's per-channel
  mean and standard deviation;
- `Tokens(vocabulary_size, padding_id, min_length)`: random token ids for
  integer inputs;
- `Custom(step_function, stream_function)`: the user's own.

`get(name)` builds one from a name; `noise_dataset` is the stream of noise
inputs and random targets.
"""

from keras_noisewarm.noise.base import NoiseFamily
from keras_noisewarm.noise.base import get
from keras_noisewarm.noise.base import register_family
from keras_noisewarm.noise.continuous import DataMatched
from keras_noisewarm.noise.continuous import Gaussian
from keras_noisewarm.noise.continuous import Uniform
from keras_noisewarm.noise.custom import Custom
from keras_noisewarm.noise.stream import STREAM_VERSION
from keras_noisewarm.noise.stream import label_dataset
from keras_noisewarm.noise.stream import noise_dataset
from keras_noisewarm.noise.stream import target_dataset
from keras_noisewarm.noise.structured import PinkNoise
from keras_noisewarm.noise.tokens import Tokens


def sample_noise(shape, distribution="gaussian", mean=0.0, std=1.0, seed=None, dtype="float32",
                 noise=None):
    """One tensor of noise from the Keras backend's own random generator.

    Args:
        shape: Full shape of the tensor, batch dimension included.
        distribution: Deprecated with `mean` and `std`: `"gaussian"` or
            `"uniform"`; pass `noise=` instead.
        mean: Mean of the deprecated distribution.
        std: Standard deviation of the deprecated distribution.
        seed: An integer or a `keras.random.SeedGenerator` (use one inside
            compiled code, so that every call draws fresh noise).
        dtype: Dtype of the result.
        noise: A noise family; when given, `distribution`, `mean` and `std`
            must keep their defaults.

    Returns:
        A backend tensor of `shape`.

    Example:

    >>> tuple(sample_noise((2, 3), noise=Gaussian(), seed=0).shape)
    (2, 3)
    """
    import keras

    from keras_noisewarm.noise import stream

    if noise is None:
        family = stream.legacy_family(distribution, mean, std)
    elif (distribution, mean, std) != ("gaussian", 0.0, 1.0):
        raise ValueError("Give `noise=` or `distribution`/`mean`/`std`, not both.")
    else:
        family = get(noise)
    dtype = keras.backend.standardize_dtype(dtype)
    family.check(tuple(shape[1:]) or (1,), dtype)
    if seed is None or isinstance(seed, int):
        seed = keras.random.SeedGenerator(seed)
    return family.step_sample(tuple(shape), seed, dtype)
