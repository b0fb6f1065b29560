"""Which part of a global batch the current replica trains on.

Under `tf.distribute` strategies (`MirroredStrategy`,
`MultiWorkerMirroredStrategy`, `TPUStrategy`) every replica runs the train
step on its own slice of the global batch, and a `keras.random` draw seeded
by a `SeedGenerator` gives every replica the same numbers (the generator's
state is one mirrored variable). Noise drawn inside the step must therefore
be drawn for the whole global batch and sliced, or all replicas would train
on copies of one slice. Under JAX (`keras.distribution`) the step is one
SPMD program over the global batch, which XLA shards itself; Keras's
PyTorch backend has no data-parallel `fit`. There the step sees the whole
batch.
"""

import keras


def replicas_in_sync():
    """How many replicas split each batch of a `fit` started here.

    Example:

    >>> replicas_in_sync()
    1
    """
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_share(global_batch):
    """This replica's slice of a tensor holding the whole global batch.

    Args:
        global_batch: A tensor whose first axis is the global batch, drawn
            alike on every replica; its length is a multiple of
            `replicas_in_sync()`.

    Returns:
        Rows `[i * n / R, (i + 1) * n / R)` on replica `i` of `R` under a
        `tf.distribute` strategy with several replicas in sync (the first
        slice where Keras traces the step outside any replica, to infer its
        shapes); the tensor itself everywhere else.

    Example:

    >>> share = replica_share(keras.ops.ones((4, 2)))
    >>> tuple(share.shape)  # one replica: the whole batch
    (4, 2)
    """
    count = replicas_in_sync()
    if count == 1:
        return global_batch
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    index = 0 if context is None else context.replica_id_in_sync_group
    rows = global_batch.shape[0]
    parts = tf.reshape(global_batch, [count, rows // count] + list(global_batch.shape[1:]))
    return tf.gather(parts, index)
