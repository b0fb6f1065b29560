"""Milliseconds per batch of Gaussian noise, each generator on one core.

The warm-up's noise must be generated for every batch, so the generator's
cost is what the warm-up pays beyond an ordinary training step on a CPU.
This times, side by side in one process, the generators a Keras user has at
hand, all on one thread (tf.data runs each generation on one thread too):

- the noise stream's own generator (`keras_noisewarm.noise`, a vectorised
  Box-Muller transform of Philox uniforms), and the uniforms alone;
- `tf.random.stateless_normal`, which the stream used before (the same
  transform, one pair at a time);
- NumPy's float32 `standard_normal`;
- `jax.random.normal` (jitted) and `torch.randn`.

The ratio printed is each generator's time against the stream's.

    python benchmarks/noise_generators.py            # 128 x 32x32x3
    python benchmarks/noise_generators.py --quick    # CI
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _machine import print_machine  # noqa: E402

from keras_noisewarm.noise.base import stream_standard_normal  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)


def generators(shape):
    """Name -> a function drawing one batch of `shape` (returns when done)."""
    import jax
    import torch

    torch.set_num_threads(1)
    seed = tf.constant([1, 2], tf.int64)
    stream = tf.function(lambda: stream_standard_normal(shape, seed, tf.float32),
                         autograph=False)
    uniforms = tf.function(
        lambda: tf.random.stateless_uniform(shape, seed=seed), autograph=False
    )
    numpy_generator = np.random.default_rng(0)
    jax_normal = jax.jit(lambda key: jax.random.normal(key, shape))
    jax_key = jax.random.key(0)
    return {
        "the stream (Box-Muller)": lambda: stream().numpy(),
        "  its uniforms alone": lambda: uniforms().numpy(),
        "tf stateless_normal": lambda: tf.random.stateless_normal(shape, seed).numpy(),
        "numpy standard_normal": lambda: numpy_generator.standard_normal(
            shape, dtype=np.float32
        ),
        "jax normal (jit)": lambda: jax_normal(jax_key).block_until_ready(),
        "torch randn": lambda: torch.randn(shape),
    }


def milliseconds(draw, repeats):
    draw()
    draw()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        draw()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    print_machine()
    shape = (8, 8, 8, 3) if args.quick else (128, 32, 32, 3)
    repeats, rounds = (3, 1) if args.quick else (10, 5)
    draws = generators(shape)
    # Rounds alternate the order; each generator's median over all draws.
    times = {name: [] for name in draws}
    names = list(draws)
    for round_index in range(rounds):
        for name in names if round_index % 2 == 0 else reversed(names):
            times[name].append(milliseconds(draws[name], repeats))
    print(f"\nGaussian batch of shape {shape} ({int(np.prod(shape)):,} values), one thread")
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"  {name:24s} {value:7.3f} ms")
    stream = medians["the stream (Box-Muller)"]
    for name, value in medians.items():
        if name != "the stream (Box-Muller)":
            print(f"ratio ({name.strip()} / the stream): {value / stream:.2f}x")


if __name__ == "__main__":
    main()
