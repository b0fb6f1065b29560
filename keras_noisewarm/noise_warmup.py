"""Random-noise warm-up: train briefly on noise before training on data.

The warm-up trains the user's model through `keras.Model.fit` on noise (the
`tf.data` stream of `noise_dataset`, or noise drawn inside the train step),
so it runs unchanged on the TensorFlow, JAX and PyTorch backends and Keras's
progress bar and callbacks apply.

The user's own setup is never touched: the warm-up fits a
`SharedLayersModel` that shares the user's layers (and so their weights and
BatchNorm statistics) but is compiled on its own, with its own fresh
optimizer. The user's compiled loss, metrics, optimizer, optimizer state and
callbacks stay exactly as they were.
"""

import copy
import math

import keras
import numpy as np

from keras_noisewarm import inspection
from keras_noisewarm import noise as noise_lib
from keras_noisewarm import shapes as shapes_lib
from keras_noisewarm import tasks as tasks_lib
from keras_noisewarm import validation
from keras_noisewarm.backend import devices
from keras_noisewarm.backend import replicas
from keras_noisewarm.noise import stream as stream_lib
from keras_noisewarm.shared_layers import SharedLayersModel

# Defaults follow the authors' MLP recipe (Adam, ten epochs of 32,000 noise
# examples). The learning rate is the one that helped in our measurement
# (README, "Choosing the warm-up defaults"): 1e-3 made calibration worse on
# the six-layer CIFAR-10 MLP, 1e-4 made it better.
DEFAULT_NUM_EXAMPLES = 320_000
DEFAULT_BATCH_SIZE = 128
DEFAULT_LEARNING_RATE = 1e-4
NOISE_SOURCES = ("auto", "stream", "device")
VERBOSITY = ("auto", 0, 1, 2)


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class NoiseWarmup:
    """Configurable random-noise warm-up (Cheon & Paik, 2026).

    Before training on data, the model is trained on inputs of pure noise
    (Gaussian by default) paired with targets that carry no information:
    for a classifier, labels drawn uniformly from its `K` classes. The best
    the model can then do is predict `1/K` for every class everywhere: the
    warm-up pulls its confidence down to chance level and removes the class
    bias of a random initialisation. Other outputs are pulled to their own
    uninformative prior (`keras_noisewarm.tasks`). The model stays in
    training mode, so BatchNorm statistics are updated on the noise, as in
    the authors' code.

    The defaults follow the authors' MLP recipe: Adam, 320,000 noise examples
    (ten epochs of 32,000), and a learning rate of 1e-4 (1e-3 was measured to
    hurt calibration on a six-layer MLP). For the authors' ResNet-18 recipe
    use `optimizer=keras.optimizers.SGD(0.01, momentum=0.9, weight_decay=0.01)`,
    `batch_size=256`, `num_examples=200_000`.

    Every argument is checked here, when the object is built.

    Args:
        num_classes: Number of classes `K` of a classifier, or `None` to take
            it from the width of the model's output.
        num_examples: Number of noise examples to train on (default 320,000).
            Rounded up to whole batches.
        steps: Number of warm-up steps; give this or `num_examples`, not both.
        batch_size: Noise examples per step (default 128).
        optimizer: The warm-up's own optimizer: `None` for
            `Adam(learning_rate)`, an optimizer name, config dict or instance.
            An instance is cloned from its config on every `run`, so its state
            never leaks into the model's training, nor from one run to the
            next.
        learning_rate: Learning rate of the warm-up optimizer; `None` keeps
            the optimizer's own (1e-4 for the default Adam).
        noise: The noise family (`keras_noisewarm.noise`: `Gaussian(mean,
            std)`, `Uniform`, `PinkNoise`, `DataMatched(sample)`, `Tokens`,
            `Custom`, or a name), or one per input (a list, or a dict keyed
            like the model's inputs). `None`: `Gaussian()` for float inputs,
            `Tokens` for inputs read by an `Embedding`, uniform noise over
            `[0, 255]` for uint8 images.
        task: What the output predicts (`keras_noisewarm.tasks`: a name such
            as `"multi_label"`, or a `Task` such as `Regression(mean, std)`),
            one per output for several; `None` infers it from the output's
            activation, width and compiled loss.
        from_logits: Whether a classifier outputs logits; `None` detects it
            from one forward pass (see `keras_noisewarm.outputs`).
        input_shape: Shape of one example without the batch dimension (a
            list or dict of shapes for several inputs); `None` reads it from
            `model.inputs`. Needed for subclassed models that were not built.
        seed: Integer seed of the noise; `None` draws one from NumPy's
            global generator (set by `keras.utils.set_random_seed`).
        verbose: Passed to `fit`: `"auto"`, 0 (silent), 1 (progress bar) or 2
            (one line per epoch).
        callbacks: Extra `keras.callbacks.Callback`s for the warm-up fit.
        noise_source: Where the noise inputs are drawn. `"stream"`: the
            `tf.data` stream of `noise_dataset`, generated on the host in
            parallel with training; bit-identical on every backend.
            `"device"`: inside the train step, by the backend's own random
            generator, with the targets still from the stream; no host
            generation and no copy, the fastest choice on an accelerator, and
            reproducible for a given seed and backend. `"auto"` (default)
            picks `"device"` on a GPU/TPU and under torch, whose generator is
            the fastest on CPUs, and `"stream"` otherwise (see
            `keras_noisewarm.backend.devices`), or the only place a `Custom`
            family can draw.
        distribution: Deprecated, use `noise=`: `"gaussian"` or `"uniform"`.
        mean: Deprecated, use `noise=Gaussian(mean, std)`.
        std: Deprecated, use `noise=Gaussian(mean, std)`.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...     keras.layers.Dense(3)])
    >>> history = NoiseWarmup(3, steps=5, seed=0, verbose=0).run(model)
    >>> len(history.history["loss"])
    1
    """

    def __init__(
        self,
        num_classes=None,
        num_examples=None,
        steps=None,
        batch_size=DEFAULT_BATCH_SIZE,
        optimizer=None,
        learning_rate=None,
        noise=None,
        task=None,
        from_logits=None,
        input_shape=None,
        seed=None,
        verbose="auto",
        callbacks=None,
        noise_source="auto",
        distribution=None,
        mean=None,
        std=None,
    ):
        if num_classes is not None and not isinstance(num_classes, (list, tuple, dict)):
            num_classes = validation.check_int("num_classes", num_classes, minimum=2)
        self.num_classes = num_classes
        if steps is not None and num_examples is not None:
            raise ValueError(
                "Give either `steps` or `num_examples` for the warm-up, not both "
                f"(got steps={steps}, num_examples={num_examples})."
            )
        self.steps = validation.check_optional_int("steps", steps)
        self.num_examples = validation.check_optional_int("num_examples", num_examples)
        self.batch_size = validation.check_int("batch_size", batch_size)
        if learning_rate is not None:
            learning_rate = validation.check_positive_number("learning_rate", learning_rate)
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.make_optimizer()  # an optimizer that cannot be built fails here
        if (distribution, mean, std) != (None, None, None):
            if noise is not None:
                raise ValueError(
                    "Give `noise=` (a family such as keras_noisewarm.noise.Gaussian(mean, "
                    "std)) or the older `distribution`, `mean` and `std`, not both."
                )
            noise = stream_lib.legacy_family(distribution, mean, std)
        self.noise = _families(noise)
        self.task = _tasks(task)
        self.from_logits = validation.check_from_logits(from_logits)
        self.input_shape = None if input_shape is None else shapes_lib.example_shapes(input_shape)
        self.seed = validation.check_seed("seed", seed)
        validation.check_choice("verbose", verbose, VERBOSITY)
        self.verbose = verbose
        self.callbacks = _callbacks(callbacks)
        self.noise_source = validation.check_choice("noise_source", noise_source, NOISE_SOURCES)

    def num_steps(self):
        """The number of training steps one `run` takes."""
        if self.steps is not None:
            return self.steps
        num_examples = DEFAULT_NUM_EXAMPLES if self.num_examples is None else self.num_examples
        return math.ceil(num_examples / self.batch_size)

    def resolved_noise_source(self, families=()):
        """`"stream"` or `"device"`: where this warm-up draws its noise.

        Args:
            families: The noise families of the model's inputs; a family that
                can only draw in one place decides for `"auto"`, and refuses
                the other.
        """
        in_stream = all(family.samples_in_stream for family in families)
        in_step = all(family.samples_in_step for family in families)
        source = self.noise_source
        if source == "auto":
            source = devices.default_noise_source()
            if source == "device" and not in_step:
                source = "stream"
            elif source == "stream" and not in_stream:
                source = "device"
        if (source == "stream" and not in_stream) or (source == "device" and not in_step):
            raise ValueError(
                f"noise_source={source!r}, but a noise family of this model cannot "
                f"draw there ({', '.join(family.describe() for family in families)})."
            )
        return source

    def make_optimizer(self):
        """A fresh warm-up optimizer built from `optimizer` and `learning_rate`."""
        if self.optimizer is None:
            return keras.optimizers.Adam(
                learning_rate=self.learning_rate or DEFAULT_LEARNING_RATE
            )
        try:
            if isinstance(self.optimizer, keras.optimizers.Optimizer):
                config = self.optimizer.get_config()
                optimizer_class = type(self.optimizer)
            else:
                template = keras.optimizers.get(copy.deepcopy(self.optimizer))
                config = template.get_config()
                optimizer_class = type(template)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"`optimizer` must be None, an optimizer name, config or instance; "
                f"{self.optimizer!r} is none of these ({error})."
            ) from None
        if self.learning_rate is not None:
            config["learning_rate"] = self.learning_rate
        return optimizer_class.from_config(config)

    def inspect(self, model):
        """What this warm-up sees in `model` (raises what `run` would raise)."""
        return inspection.inspect_model(
            model,
            num_classes=self.num_classes,
            task=self.task,
            input_shape=self.input_shape,
            from_logits=self.from_logits,
            noise=self.noise,
        )

    def run(self, model):
        """Warms up `model` in place on noise.

        Everything is validated before the first step: on error, the model is
        unchanged.

        Args:
            model: A Keras model (compiled or not).

        Returns:
            The `keras.callbacks.History` of the warm-up fit.
        """
        spec = self.inspect(model)
        steps = self.num_steps()
        source = self.resolved_noise_source(spec.families)
        num_replicas = replicas.replicas_in_sync()
        if source == "device" and self.batch_size % num_replicas:
            raise ValueError(
                f"The warm-up draws its noise on the device, and its batch of "
                f"{self.batch_size} examples does not split evenly over the "
                f"{num_replicas} replicas of the distribution strategy: use a "
                f"batch_size that is a multiple of {num_replicas}."
            )
        seed = self.seed
        if seed is None:
            seed = int(np.random.randint(0, 2**31 - 1))
        targets = list(zip(spec.tasks, spec.target_shapes))
        if source == "stream":
            leaves, pack = shapes_lib.flatten(spec.input_shape)

            def make_inputs(seeds):
                return pack([
                    family.stream_sample((self.batch_size,) + shape, seeds[index], dtype)
                    for index, (family, shape, dtype) in enumerate(
                        zip(spec.families, leaves, spec.input_dtypes)
                    )
                ])

            dataset = stream_lib.stream(make_inputs, len(leaves), targets, self.batch_size, seed)
            trainer = SharedLayersModel(model, name=f"{model.name}_noise_warmup")
        else:
            dataset = stream_lib.target_dataset(targets, batch_size=self.batch_size, seed=seed)
            trainer = _DeviceNoiseTrainer(model, spec, self.batch_size, seed)
        dataset = _packed_targets(dataset, spec)
        trainer.compile(optimizer=self.make_optimizer(), loss=spec.losses())
        return trainer.fit(
            dataset,
            epochs=1,
            steps_per_epoch=steps,
            shuffle=False,
            verbose=self.verbose,
            callbacks=self.callbacks,
        )

    def get_config(self):
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer):
            optimizer = keras.optimizers.serialize(optimizer)
        return {
            "num_classes": self.num_classes,
            "num_examples": self.num_examples,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "optimizer": optimizer,
            "learning_rate": self.learning_rate,
            "noise": _serialised(self.noise),
            "task": _serialised(self.task),
            "from_logits": self.from_logits,
            "input_shape": _listed(self.input_shape),
            "seed": self.seed,
            "verbose": self.verbose,
            "callbacks": _serialised_callbacks(self.callbacks),
            "noise_source": self.noise_source,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        callbacks = config.get("callbacks")
        if callbacks:
            config["callbacks"] = [keras.saving.deserialize_keras_object(c) for c in callbacks]
        return cls(**config)


def warmup(model, num_classes=None, **kwargs):
    """Warms up `model` on random noise; call it before `model.fit`.

    A one-liner for `NoiseWarmup(num_classes, **kwargs).run(model)`. The
    model's weights (and BatchNorm statistics) change; its compiled loss,
    metrics, optimizer and optimizer state do not.

    Args:
        model: A Keras model, compiled or not: a classifier ending in logits
            or probabilities over `num_classes` classes, or a model whose
            outputs have another task (`keras_noisewarm.tasks`).
        num_classes: Number of classes, or `None` to take it from the width
            of the model's output.
        **kwargs: Any argument of `NoiseWarmup`: `num_examples`, `steps`,
            `batch_size`, `optimizer`, `learning_rate`, `noise`, `task`,
            `from_logits`, `input_shape`, `seed`, `verbose`, `callbacks`,
            `noise_source`.

    Returns:
        The `keras.callbacks.History` of the warm-up.

    Example:

    >>> model = keras.Sequential([
    ...     keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
    ...     keras.layers.Dense(3, activation="softmax")])
    >>> model.compile("adam", "sparse_categorical_crossentropy")
    >>> history = warmup(model, num_classes=3, steps=5, seed=0, verbose=0)
    >>> sorted(history.history)
    ['loss']
    """
    return NoiseWarmup(num_classes=num_classes, **kwargs).run(model)


class _DeviceNoiseTrainer(SharedLayersModel):
    """Draws the noise inputs inside the train step, on the device.

    It is fed `noise.target_dataset`: the targets, and a placeholder input
    that only gives the batch's number of rows. A `SeedGenerator` makes every step draw fresh noise,
    also inside a compiled (`jit`) step, where Keras threads its state
    through. Under a `tf.distribute` strategy every replica draws the whole
    global batch alike and trains on its own slice of it
    (`backend.replicas`), so the replicas together see the noise one device
    would see.
    """

    def __init__(self, model, spec, batch_size, seed):
        super().__init__(model, name=f"{model.name}_noise_warmup")
        self.leaves, self.pack = shapes_lib.flatten(spec.input_shape)
        self.families = spec.families
        self.input_dtypes = spec.input_dtypes
        self.batch_size = batch_size
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        # The placeholder has this replica's rows; the draw covers all replicas.
        rows = inputs.shape[0] * replicas.replicas_in_sync()
        noise_inputs = [
            replicas.replica_share(
                family.step_sample((rows,) + shape, self.seed_generator, dtype)
            )
            for family, shape, dtype in zip(self.families, self.leaves, self.input_dtypes)
        ]
        return self.wrapped(self.pack(noise_inputs), training=training)


def _packed_targets(dataset, spec):
    """The stream with its targets in the structure of the model's outputs."""
    if spec.single_output or not isinstance(spec.output_structure, dict):
        return dataset
    return dataset.map(lambda inputs, targets: (inputs, spec.pack_outputs(list(targets))))


def _families(noise):
    if isinstance(noise, dict) and "class_name" in noise:
        return noise_lib.get(noise)
    if isinstance(noise, dict):
        return {key: noise_lib.get(value) for key, value in noise.items()}
    if isinstance(noise, (list, tuple)):
        return [noise_lib.get(value) for value in noise]
    return None if noise is None else noise_lib.get(noise)


def _tasks(task):
    if task is None or isinstance(task, (str, tasks_lib.Task)):
        if isinstance(task, str) and task not in tasks_lib.TASKS:
            raise ValueError(f"Unknown task {task!r}: expected one of {sorted(tasks_lib.TASKS)} or a Task.")
        return task
    if isinstance(task, dict) and "class_name" in task:
        return keras.saving.deserialize_keras_object(task)
    if isinstance(task, dict):
        return {key: _tasks(value) for key, value in task.items()}
    if isinstance(task, (list, tuple)):
        return [_tasks(value) for value in task]
    raise ValueError(f"`task` must be a task name or a keras_noisewarm.tasks.Task, got {task!r}.")


def _callbacks(callbacks):
    if callbacks is None:
        return None
    if isinstance(callbacks, keras.callbacks.Callback):
        callbacks = [callbacks]
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.Callback):
            raise ValueError(f"`callbacks` must hold keras.callbacks.Callback objects, got {callback!r}.")
    return callbacks


def _serialised(value):
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {key: _serialised(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_serialised(item) for item in value]
    return keras.saving.serialize_keras_object(value)


def _serialised_callbacks(callbacks):
    if not callbacks:
        return None
    serialised = []
    for callback in callbacks:
        if not callable(getattr(callback, "get_config", None)):
            raise ValueError(
                f"The warm-up callback {callback!r} cannot be serialised (it has no "
                "get_config). Leave it out of the NoiseWarmup you save, and pass it "
                "to the warm-up when you run it."
            )
        serialised.append(keras.saving.serialize_keras_object(callback))
    return serialised


def _listed(shape):
    """Shapes as JSON gives them back; `from_config` turns them into tuples."""
    if shape is None:
        return None
    if isinstance(shape, dict):
        return {key: list(value) for key, value in shape.items()}
    if shape and isinstance(shape[0], tuple):
        return [list(value) for value in shape]
    return list(shape)
