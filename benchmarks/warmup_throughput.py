"""Examples per second of the noise warm-up against `model.fit` on data.

Both sides train the same model with the same optimizer, loss and batch size,
in the same process, one after the other, alternating which goes first:

- warm-up, both noise sources: `keras_noisewarm.warmup(model, ...,
  noise_source="stream")` (the tf.data noise stream, generated on the host)
  and `noise_source="device"` (drawn inside the train step by the backend's
  generator); the default (`"auto"`) is marked;
- fit: `model.fit(x, y)` on in-memory NumPy arrays of the same shapes (the
  cheapest input pipeline Keras has: slicing arrays that already exist).

The target is a ratio (warm-up / fit) of at least 0.95: generating the noise
must cost about as much as reading data that is already in memory.

Under the torch backend two more comparisons run:

- our warm-up against a plain PyTorch loop on the same MLP (`torch.randn` +
  `torch.randint` every step, SGD, written below), target ratio >= 0.9;
- everything with torch's default number of intra-op threads and with one,
  since torch's OpenMP workers and TensorFlow's tf.data threads share the
  cores of one process.

Each timing skips the first steps of its run (tracing, JIT compilation,
filling the prefetch buffer) and stops when `fit` has returned; the rate is
the median over the repeats.

    KERAS_BACKEND=jax python benchmarks/warmup_throughput.py           # full
    KERAS_BACKEND=jax python benchmarks/warmup_throughput.py --quick   # CI
    KERAS_BACKEND=jax python benchmarks/warmup_throughput.py --sweep \
        --plot docs/warmup_cost_sweep.png    # cost against input size,
                                             # batch size and classes
"""

import argparse
import collections
import json
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _machine import print_machine  # noqa: E402

import keras_noisewarm  # noqa: E402

NUM_CLASSES = 10
LEARNING_RATE = 1e-4


# --------------------------------------------------------------------------
# Models


def mlp(input_shape, num_classes=NUM_CLASSES, width=256, depth=3):
    """The paper's MLP blocks: Dense (He-normal) -> ReLU -> BatchNorm."""
    layers = [keras.Input(input_shape), keras.layers.Flatten()]
    for _ in range(depth):
        layers += [
            keras.layers.Dense(width, kernel_initializer="he_normal"),
            keras.layers.ReLU(),
            keras.layers.BatchNormalization(),
        ]
    layers.append(keras.layers.Dense(num_classes, kernel_initializer="he_normal"))
    return keras.Sequential(layers, name="mlp")


def small_cnn(input_shape, num_classes=NUM_CLASSES):
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(num_classes),
        ],
        name="cnn",
    )


def compile_like_the_warmup(model, optimizer):
    # The warm-up compiles its own trainer with the loss alone; the data side
    # gets the same, so that the two differ only in where the batches come
    # from.
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )


# --------------------------------------------------------------------------
# Timing


class Stopwatch(keras.callbacks.Callback):
    """Times a fit from the start of batch `skip` until training ends.

    The first `skip` steps (tracing, compilation, the prefetch buffer filling)
    are left out. `on_train_end` comes after Keras has synchronised the
    model's state, so asynchronously dispatched work has finished. Besides
    the wall time it keeps the process's CPU time (all threads, tf.data's
    included), which shows what the noise costs when the cores are busy.
    """

    def __init__(self, skip):
        super().__init__()
        self.skip = skip
        self.start = None
        self.cpu_start = None
        self.seconds = None
        self.cpu_seconds = None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == self.skip:
            self.start = time.perf_counter()
            self.cpu_start = time.process_time()

    def on_train_end(self, logs=None):
        self.seconds = time.perf_counter() - self.start
        self.cpu_seconds = time.process_time() - self.cpu_start

    def timing(self, steps, batch_size):
        """`Timing` of the `steps` timed steps."""
        return Timing(steps * batch_size / self.seconds, 1e3 * self.cpu_seconds / steps)


Timing = collections.namedtuple("Timing", ["rate", "cpu_ms_per_step"])


def time_warmup(model, config, optimizer, seed, noise_source="auto"):
    stopwatch = Stopwatch(config.skip)
    keras_noisewarm.warmup(
        model,
        num_classes=model.output_shape[-1],
        steps=config.skip + config.steps,
        batch_size=config.batch_size,
        optimizer=optimizer,
        from_logits=True,
        seed=seed,
        verbose=0,
        callbacks=[stopwatch],
        noise_source=noise_source,
    )
    return stopwatch.timing(config.steps, config.batch_size)


def time_fit(model, x, y, config):
    stopwatch = Stopwatch(config.skip)
    model.fit(
        x, y, batch_size=config.batch_size, epochs=1, verbose=0,
        callbacks=[stopwatch],
    )
    return stopwatch.timing(config.steps, config.batch_size)


def side_by_side(named_timers, repeats):
    """Median `Timing` of each timer; the order alternates between repeats."""
    timings = {name: [] for name in named_timers}
    names = list(named_timers)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            timings[name].append(named_timers[name](repeat))
    return {
        name: Timing(*(statistics.median(column) for column in zip(*values)))
        for name, values in timings.items()
    }


class Config:
    def __init__(self, input_shape, batch_size, steps, skip, repeats):
        self.input_shape = input_shape
        self.batch_size = batch_size
        self.steps = steps
        self.skip = skip
        self.repeats = repeats

    def shorter(self):
        return Config(self.input_shape, self.batch_size, max(5, self.steps // 2),
                      self.skip, min(3, self.repeats))


def data_for(config, num_classes=NUM_CLASSES):
    count = (config.skip + config.steps) * config.batch_size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((count,) + config.input_shape, dtype=np.float32)
    y = rng.integers(0, num_classes, size=count).astype("int32")
    return x, y


def warmup_name(source):
    default = keras_noisewarm.NoiseWarmup().resolved_noise_source()
    return f"warmup {source}{'*' if source == default else ''}"


def warmup_against_fit(build_model, config, num_classes=NUM_CLASSES):
    """Examples/s of both warm-ups and of fit on the same model, side by side."""
    x, y = data_for(config, num_classes)
    model = build_model(config.input_shape, num_classes)
    compile_like_the_warmup(model, keras.optimizers.Adam(LEARNING_RATE))
    timers = {
        warmup_name(source): lambda repeat, source=source: time_warmup(
            model, config, keras.optimizers.Adam(LEARNING_RATE), seed=repeat,
            noise_source=source,
        )
        for source in ("stream", "device")
    }
    timers["fit"] = lambda repeat: time_fit(model, x, y, config)
    return side_by_side(timers, config.repeats)


# --------------------------------------------------------------------------
# The plain PyTorch reference (torch backend only)


def torch_reference_rate(config, width=256, depth=3):
    """A hand-written PyTorch loop on the MLP of `mlp()`: fresh noise and
    labels from `torch.randn` / `torch.randint` each step, SGD."""
    import torch

    layers = [torch.nn.Flatten()]
    features = int(np.prod(config.input_shape))
    for _ in range(depth):
        layers += [
            torch.nn.Linear(features, width),
            torch.nn.ReLU(),
            torch.nn.BatchNorm1d(width),
        ]
        features = width
    layers.append(torch.nn.Linear(features, NUM_CLASSES))
    model = torch.nn.Sequential(*layers).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    shape = (config.batch_size,) + config.input_shape

    def step():
        inputs = torch.randn(shape)
        labels = torch.randint(0, NUM_CLASSES, (config.batch_size,))
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), labels)
        loss.backward()
        optimizer.step()

    for _ in range(config.skip):
        step()
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(config.steps):
        step()
    return Timing(
        config.steps * config.batch_size / (time.perf_counter() - start),
        1e3 * (time.process_time() - cpu_start) / config.steps,
    )


def warmup_against_torch(config):
    model = mlp(config.input_shape)
    model.build((None,) + config.input_shape)
    timers = {
        f"{warmup_name(source)} (SGD)": lambda repeat, source=source: time_warmup(
            model, config, keras.optimizers.SGD(0.01), seed=repeat, noise_source=source
        )
        for source in ("stream", "device")
    }
    timers["plain torch"] = lambda repeat: torch_reference_rate(config)
    return side_by_side(timers, config.repeats)


# --------------------------------------------------------------------------
# Report


def print_rates(title, timings, numerators, denominator, target):
    print(f"\n{title}  (* = the default noise source here)")
    for name, timing in timings.items():
        print(
            f"  {name:16s} {timing.rate:12,.0f} examples/s  "
            f"CPU {timing.cpu_ms_per_step:6.2f} ms/step"
        )
    for numerator in numerators:
        ratio = timings[numerator].rate / timings[denominator].rate
        verdict = "meets" if ratio >= target else "MISSES"
        print(
            f"ratio ({title}; {numerator}/{denominator}): {ratio:.2f}x  "
            f"[{verdict} the target of {target:.2f}x]"
        )


def run_all(mlp_config, cnn_config):
    warmups = [warmup_name(source) for source in ("stream", "device")]
    print_rates(
        f"MLP on {mlp_config.input_shape}, batch {mlp_config.batch_size}",
        warmup_against_fit(mlp, mlp_config), warmups, "fit", target=0.95,
    )
    print_rates(
        f"CNN on {cnn_config.input_shape}, batch {cnn_config.batch_size}",
        warmup_against_fit(small_cnn, cnn_config), warmups, "fit", target=0.95,
    )
    if keras.backend.backend() == "torch":
        print_rates(
            f"MLP on {mlp_config.input_shape}, batch {mlp_config.batch_size}, "
            "against plain PyTorch",
            warmup_against_torch(mlp_config),
            [f"{name} (SGD)" for name in warmups], "plain torch", target=0.9,
        )


# --------------------------------------------------------------------------
# How the cost grows (--sweep)

# One factor at a time around the MLP of the main table (32x32x3, batch 128,
# 10 classes).
SWEEP = {
    "input side (HxWx3)": ("input_shape", [(8, 8, 3), (16, 16, 3), (32, 32, 3), (64, 64, 3)]),
    "batch size": ("batch_size", [32, 128, 512]),
    "classes": ("num_classes", [10, 100, 1000]),
}


def sweep(quick):
    results = {}
    for title, (name, values) in SWEEP.items():
        results[title] = []
        for value in values:
            point = dict(input_shape=(32, 32, 3), batch_size=128, num_classes=10)
            point[name] = value
            # About the same number of examples per timing at every point.
            steps = 3 if quick else max(5, 6400 // point["batch_size"])
            config = Config(point["input_shape"], point["batch_size"], steps,
                            skip=2 if quick else 3, repeats=1 if quick else 3)
            timings = warmup_against_fit(mlp, config, point["num_classes"])
            # The sweep follows the default noise source of this backend.
            default_source = keras_noisewarm.NoiseWarmup().resolved_noise_source()
            warmup = timings[warmup_name(default_source)].rate
            fit = timings["fit"].rate
            label = value[0] if name == "input_shape" else value
            results[title].append(dict(value=label, warmup=warmup, fit=fit))
            print(
                f"  {title} = {label}: warmup {warmup:10,.0f}  fit "
                f"{fit:10,.0f} examples/s  ratio {warmup / fit:.2f}x",
                flush=True,
            )
    return results


def plot_sweep(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        2, len(results), figsize=(4 * len(results), 6), sharex="col",
        gridspec_kw=dict(height_ratios=(2, 1)),
    )
    for column, (title, points) in enumerate(results.items()):
        values = [point["value"] for point in points]
        rates, ratios = axes[0, column], axes[1, column]
        for side, style in (("warmup", "o-"), ("fit", "s--")):
            rates.plot(values, [point[side] for point in points], style, label=side)
        rates.set_ylim(bottom=0)
        rates.set_ylabel("examples / s")
        ratios.plot(values, [point["warmup"] / point["fit"] for point in points], "o-")
        ratios.axhline(0.95, color="grey", linestyle=":", label="target 0.95")
        ratios.set_ylim(0, max(1.3, *[point["warmup"] / point["fit"] for point in points]))
        ratios.set_ylabel("warm-up / fit")
        ratios.set_xscale("log")
        ratios.set_xticks(values, [str(value) for value in values])
        ratios.minorticks_off()
        ratios.set_xlabel(title)
        for axis in (rates, ratios):
            axis.grid(alpha=0.3)
    axes[0, 0].legend()
    axes[1, 0].legend(loc="lower left")
    figure.suptitle(
        f"MLP warm-up vs fit on NumPy data, {keras.backend.backend()} backend, "
        f"{os.cpu_count()} CPU cores"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f"plot: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for CI")
    parser.add_argument(
        "--sweep", action="store_true",
        help="instead of the main table, vary input size, batch size and classes",
    )
    parser.add_argument("--plot", help="with --sweep: save the plot here (PNG)")
    parser.add_argument("--json", help="with --sweep: save the numbers here")
    args = parser.parse_args()
    print_machine()
    if args.sweep:
        if keras.backend.backend() == "torch":
            import torch

            torch.set_num_threads(1)
            print("torch intra-op threads: 1")
        results = sweep(args.quick)
        if args.json:
            with open(args.json, "w") as file:
                json.dump(results, file, indent=1)
        if args.plot:
            plot_sweep(results, args.plot)
        return
    if args.quick:
        mlp_config = Config((8, 8, 3), batch_size=32, steps=5, skip=2, repeats=1)
        cnn_config = Config((8, 8, 3), batch_size=32, steps=5, skip=2, repeats=1)
    else:
        mlp_config = Config((32, 32, 3), batch_size=128, steps=50, skip=5, repeats=5)
        cnn_config = Config((32, 32, 3), batch_size=128, steps=20, skip=3, repeats=5)

    if keras.backend.backend() != "torch":
        run_all(mlp_config, cnn_config)
        return
    import torch

    default_threads = torch.get_num_threads()
    for threads in sorted({default_threads, 1}, reverse=True):
        torch.set_num_threads(threads)
        print(f"\n=== torch intra-op threads: {threads}"
              f"{' (default)' if threads == default_threads else ''}")
        if threads == 1:
            run_all(mlp_config, cnn_config)
        else:
            # Steps can be 10x slower here (spin-waiting threads on a busy
            # machine): fewer of them keep the run within a few minutes.
            run_all(mlp_config.shorter(), cnn_config.shorter())
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
