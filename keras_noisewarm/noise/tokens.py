"""Random token ids: the noise of models whose inputs are integers (text, codes)."""

import keras
import numpy as np

from keras_noisewarm import validation
from keras_noisewarm.noise import base


@base.register_family("tokens")
class Tokens(base.NoiseFamily):
    """Uniformly random token ids in `[0, vocabulary_size)`, padding respected.

    The noise of a language or sequence model: every position holds an id
    drawn uniformly from the vocabulary, except the padding id, which is
    never drawn as a token. With `min_length`, each sequence gets a random
    length in `[min_length, L]` (the last axis) and is padded with
    `padding_id` after it, as real batches of mixed lengths are, so that a
    model that masks padding (`Embedding(mask_zero=True)`) sees masked steps
    during the warm-up too.

    Args:
        vocabulary_size: Number of token ids (at least 2).
        padding_id: The id that stands for padding (0 for an `Embedding`
            with `mask_zero=True`), never drawn as a token; `None` (default)
            if the model has no padding.
        min_length: Shortest sequence, in `[1, L]`; `None` (default) for
            sequences without padding. Needs `padding_id`.

    Example:

    >>> noise = Tokens(vocabulary_size=50, padding_id=0)
    >>> ids = keras.ops.convert_to_numpy(
    ...     noise.step_sample((4, 12), keras.random.SeedGenerator(0), "int32"))
    >>> bool(ids.min() >= 1 and ids.max() < 50)
    True
    """

    def __init__(self, vocabulary_size, padding_id=None, min_length=None):
        self.vocabulary_size = validation.check_int("vocabulary_size", vocabulary_size, minimum=2)
        self.padding_id = None
        if padding_id is not None:
            self.padding_id = validation.check_int("padding_id", padding_id, minimum=0)
            if self.padding_id >= self.vocabulary_size:
                raise ValueError(
                    f"`padding_id` {padding_id} lies outside the vocabulary of "
                    f"{vocabulary_size} ids."
                )
        self.min_length = validation.check_optional_int("min_length", min_length)
        if self.min_length is not None and self.padding_id is None:
            raise ValueError("`min_length` pads sequences, so it needs a `padding_id`.")

    def check(self, shape, dtype):
        if "int" not in dtype and "float" not in dtype:
            raise ValueError(f"Token ids need an integer (or float) input, got dtype {dtype}.")
        if self.min_length is not None and self.min_length > shape[-1]:
            raise ValueError(
                f"`min_length` {self.min_length} is longer than the sequences of "
                f"the input of shape {shape}."
            )

    def stream_sample(self, shape, seed, dtype):
        import tensorflow as tf

        token_seed, length_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        ids = tf.random.stateless_uniform(
            shape, seed=token_seed, minval=0, maxval=self._num_drawn(), dtype=tf.int64
        )
        ids = self._skip_padding(ids, tf.where, tf.greater_equal)
        if self.min_length is not None:
            lengths = tf.random.stateless_uniform(
                shape[:-1] + (1,), seed=length_seed, minval=self.min_length,
                maxval=shape[-1] + 1, dtype=tf.int64,
            )
            positions = tf.range(shape[-1], dtype=tf.int64)
            ids = tf.where(positions < lengths, ids, tf.constant(self.padding_id, tf.int64))
        return tf.cast(ids, dtype)

    def step_sample(self, shape, seed, dtype):
        ops = keras.ops
        ids = keras.random.randint(shape, 0, self._num_drawn(), dtype="int32", seed=seed)
        ids = self._skip_padding(ids, ops.where, ops.greater_equal)
        if self.min_length is not None:
            lengths = keras.random.randint(
                shape[:-1] + (1,), self.min_length, shape[-1] + 1, dtype="int32", seed=seed
            )
            positions = ops.arange(shape[-1], dtype="int32")
            ids = ops.where(ops.less(positions, lengths), ids, self.padding_id)
        return ops.cast(ids, dtype)

    def _num_drawn(self):
        return self.vocabulary_size - (self.padding_id is not None)

    def _skip_padding(self, ids, where, greater_equal):
        # Ids are drawn from the vocabulary without the padding id, then
        # those at or above it move up by one.
        if self.padding_id is None:
            return ids
        return where(greater_equal(ids, self.padding_id), ids + 1, ids)

    def get_config(self):
        return {
            "vocabulary_size": self.vocabulary_size,
            "padding_id": self.padding_id,
            "min_length": self.min_length,
        }


def token_moments(family):
    """Mean and standard deviation of the ids a `Tokens` family draws (no padding)."""
    ids = np.arange(family.vocabulary_size)
    if family.padding_id is not None:
        ids = ids[ids != family.padding_id]
    return float(ids.mean()), float(ids.std())
