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
import sys

import keras
import numpy as np

from keras_noisewarm import inspection
from keras_noisewarm import noise as noise_lib
from keras_noisewarm import recipes
from keras_noisewarm import shapes as shapes_lib
from keras_noisewarm import tasks as tasks_lib
from keras_noisewarm import validation
from keras_noisewarm.backend import devices
from keras_noisewarm.backend import replicas
from keras_noisewarm.callbacks import warmup_stopping as callbacks_stopping
from keras_noisewarm.noise import stream as stream_lib
from keras_noisewarm.shared_layers import SharedLayersModel

NOISE_SOURCES = ("auto", "stream", "device")
VERBOSITY = ("auto", 0, 1, 2)
BATCHNORM_MODES = ("recalibrate", "update", "freeze")
# Batches of noise that re-estimate BatchNorm statistics after the warm-up.
RECALIBRATION_BATCHES = 16


@keras.saving.register_keras_serializable(package="keras_noisewarm")
class NoiseWarmup:
    """Configurable random-noise warm-up (Cheon & Paik, 2026).

    Before training on data, the model is trained on inputs of pure noise
    paired with targets that carry no information: for a classifier, labels
    drawn uniformly from its `K` classes. The best the model can then do is
    predict `1/K` for every class everywhere: the warm-up pulls its
    confidence down to chance level and removes the class bias of a random
    initialisation. Other outputs are pulled to their own uninformative
    prior (`keras_noisewarm.tasks`).

    What it does by default, and why, is in README ("Choosing the warm-up
    defaults"): the `"default"` recipe of `keras_noisewarm.recipes` (Adam
    1e-3, batch 128, noise examples numbering a tenth of the examples of the
    training that follows, or 100 steps when that is not known), noise on
    the model's own input scale (`keras_noisewarm.noise.scale`), and
    BatchNorm statistics re-estimated on noise at the end. On the settings
    we measured it helped some models and left others unchanged; it is no
    substitute for `keras_noisewarm.compare_warmup` on your own model. The length can be
    fixed (`steps`, `num_examples`), a fraction of the training that follows
    (`budget` with `training_examples`; inside `fit`,
    `keras_noisewarm.callbacks.NoiseWarmupCallback` reads the training's
    length itself), or left to a stopping rule read off the model (`stop`).
    Named recipes give the authors' settings: `recipe="mlp"` and
    `recipe="resnet"`; arguments given with a recipe override it.

    Every argument is checked here, when the object is built.

    Args:
        num_classes: Number of classes `K` of a classifier, or `None` to take
            it from the width of the model's output.
        num_examples: Number of noise examples to train on, rounded up to
            whole batches.
        steps: Number of warm-up steps. Give at most one of `steps`,
            `num_examples` and `budget`.
        budget: The warm-up's length as a fraction of the training that
            follows, counted in examples: `budget * training_examples` noise
            examples (0.1: a tenth of the training).
        training_examples: The number of examples the training that follows
            sees (`len(x_train) * epochs`), for `budget`.
        stop: A stopping rule: `True` for `WarmupStopping()`, a
            `keras_noisewarm.callbacks.WarmupStopping`, or `False`; `None`
            takes the recipe's. The warm-up's length is then the most it
            takes.
        recipe: `"default"`, `"mlp"`, `"resnet"` or a
            `keras_noisewarm.recipes.Recipe` (`None`: `"default"`).
        batch_size: Noise examples per step (`None`: the recipe's).
        optimizer: The warm-up's own optimizer: `None` for the recipe's, an
            optimizer name, config dict or instance. An instance is cloned
            from its config on every `run`, so its state never leaks into the
            model's training, nor from one run to the next.
        learning_rate: Learning rate of the warm-up optimizer; `None` keeps
            the recipe's (or, with `optimizer` given, the optimizer's own).
        noise: The noise family (`keras_noisewarm.noise`: `Gaussian(mean,
            std)`, `Uniform`, `PinkNoise`, `DataMatched(sample)`, `Tokens`,
            `Custom`, or a name), or one per input (a list, or a dict keyed
            like the model's inputs). `None`: noise on the model's own input
            scale for float inputs (`keras_noisewarm.noise.scale`), `Tokens`
            for inputs read by an `Embedding`, uniform noise over `[0, 255]`
            for uint8 images.
        data: A sample of the training inputs (or one per input), to match
            the default noise to the data's per-channel mean and standard
            deviation. Not stored in the config.
        task: What the output predicts (`keras_noisewarm.tasks`: a name such
            as `"multi_label"`, or a `Task` such as `Regression(mean, std)`),
            one per output for several; `None` infers it from the output's
            activation, width and compiled loss.
        from_logits: Whether a classifier outputs logits; `None` detects it
            from one forward pass (see `keras_noisewarm.outputs`).
        batchnorm: What BatchNorm layers do. `"recalibrate"` (default): they
            run in training mode on the noise, as in the authors' code, and
            at the end their moving statistics are re-estimated on fresh
            noise with the warmed-up weights, so that inference-mode outputs
            match what was learnt even with a momentum of 0.999 that a short
            warm-up cannot move. `"update"`: training mode only (the
            authors' code). `"freeze"`: inference mode, statistics untouched.
        freeze: Layers to keep as they are during the warm-up (a layer, a
            name, or a list of them, at any depth of the model): for
            fine-tuning, `freeze=backbone` warms up only the new head. They
            are made non-trainable for the warm-up (so their BatchNorm layers
            run in inference mode) and every layer's `trainable` flag is
            restored afterwards, also on error.
        input_shape: Shape of one example without the batch dimension (a
            list or dict of shapes for several inputs); `None` reads it from
            `model.inputs`, or from a built subclassed model.
        seed: Integer seed of the noise; `None` draws one from NumPy's
            global generator (set by `keras.utils.set_random_seed`).
        verbose: `"auto"` (default): a progress bar in a terminal, a few
            lines otherwise (logs, CI); 0 (silent), 1 (progress bar) or 2
            (one line).
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
    >>> history.params["steps"], history.params["noise"][0].split(":")[0]
    (5, 'N(0, 1)')
    """

    def __init__(
        self,
        num_classes=None,
        num_examples=None,
        steps=None,
        budget=None,
        training_examples=None,
        stop=None,
        recipe=None,
        batch_size=None,
        optimizer=None,
        learning_rate=None,
        noise=None,
        data=None,
        task=None,
        from_logits=None,
        batchnorm="recalibrate",
        freeze=None,
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
        given_lengths = [name for name, value in
                         (("steps", steps), ("num_examples", num_examples), ("budget", budget))
                         if value is not None]
        if len(given_lengths) > 1:
            raise ValueError(
                f"Give one of `steps`, `num_examples` and `budget` for the warm-up's "
                f"length, not both ({' and '.join(given_lengths)} were given)."
            )
        self.steps = validation.check_optional_int("steps", steps)
        self.num_examples = validation.check_optional_int("num_examples", num_examples)
        if budget is not None:
            budget = validation.check_positive_number("budget", budget)
        self.budget = budget
        self.training_examples = validation.check_optional_int("training_examples", training_examples)
        self.recipe = recipes.get(recipe)
        self.stop = _stopping_rule(stop)
        self.batch_size = validation.check_int(
            "batch_size", self.recipe.batch_size if batch_size is None else batch_size
        )
        self._given_batch_size = batch_size
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
        self.data = data
        self.task = _tasks(task)
        self.from_logits = validation.check_from_logits(from_logits)
        self.batchnorm = validation.check_choice("batchnorm", batchnorm, BATCHNORM_MODES)
        self.freeze = _layer_names(freeze)
        self.input_shape = None if input_shape is None else shapes_lib.example_shapes(input_shape)
        self.seed = validation.check_seed("seed", seed)
        validation.check_choice("verbose", verbose, VERBOSITY)
        self.verbose = verbose
        self.callbacks = _callbacks(callbacks)
        self.noise_source = validation.check_choice("noise_source", noise_source, NOISE_SOURCES)
        stopper = self.stopping_rule()
        if stopper is not None:
            _check_stopper_sees_the_warmup(stopper, self)

    def num_steps(self, training_examples=None):
        """The number of training steps one `run` takes (at most, with a stopping rule).

        Args:
            training_examples: The length of the training that follows, in
                examples, when known only now (inside `fit`); overrides
                `training_examples`.
        """
        return self._length(training_examples)[0]

    def describe_length(self, training_examples=None):
        """Why one `run` takes `num_steps(training_examples)` steps, in words.

        Example:

        >>> NoiseWarmup(10).describe_length(training_examples=120_000)
        '94 steps of 128: budget 0.1 of the 120,000 training examples that follow'
        """
        steps, reason = self._length(training_examples)
        return f"{steps} steps of {self.batch_size}{reason}"

    def _length(self, training_examples=None):
        """`(steps, reason)`: the steps of one `run` and the rule that set them.

        `reason` completes the sentence of `describe_length` ("94 steps of
        128" + reason). The one place that decides the length, in this
        order: `steps`, `num_examples`, a budget of the training's examples
        (the given `budget`, else the recipe's, when the training's length
        is known), the recipe's own length.

        Raises:
            ValueError: A `budget` was given, and the training's length is not
                known.
        """
        if self.steps is not None:
            return self.steps, f" (steps={self.steps})"
        if self.num_examples is not None:
            return (math.ceil(self.num_examples / self.batch_size),
                    f" (num_examples={self.num_examples:,})")
        training_examples = training_examples or self.training_examples
        budget = self.budget if self.budget is not None else self.recipe.budget
        if budget is not None and training_examples is not None:
            return (max(1, math.ceil(budget * training_examples / self.batch_size)),
                    f": budget {budget:g} of the {training_examples:,} training examples that follow")
        if self.budget is not None:
            raise ValueError(
                "A warm-up `budget` is a fraction of the training that follows: pass "
                "training_examples=len(x_train) * epochs, or warm up inside fit with "
                "keras_noisewarm.callbacks.NoiseWarmupCallback, which reads it."
            )
        if self.recipe.steps is not None:
            steps = self.recipe.steps
        else:
            steps = math.ceil(self.recipe.num_examples / self.batch_size)
        if budget is not None:
            return steps, (f": the {self.recipe.name!r} recipe's length when the training's is "
                           f"unknown; pass training_examples=len(x_train) * epochs (or warm up "
                           f"inside fit with NoiseWarmupCallback) for a budget of {budget:g} of it")
        return steps, f": the {self.recipe.name!r} recipe's length"

    def stopping_rule(self):
        """The `WarmupStopping` this warm-up runs, or `None`."""
        if self.stop is None:
            return callbacks_stopping.WarmupStopping() if self.recipe.stop else None
        return self.stop or None

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
        """A fresh warm-up optimizer built from `optimizer`, `learning_rate` and the recipe."""
        if self.optimizer is None:
            return self.recipe.make_optimizer(self.learning_rate)
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
            data=self.data,
        )

    def run(self, model, training_examples=None):
        """Warms up `model` in place on noise.

        Everything is validated before the first step: on error, the model is
        unchanged.

        Args:
            model: A Keras model (compiled or not).
            training_examples: The length of the training that follows, for a
                `budget` (overrides `training_examples`).

        Returns:
            The `keras.callbacks.History` of the warm-up fit. Its `params`
            hold `"steps"` (the most it could take), `"length"` (why that
            many, in words: `describe_length`), `"noise"` (a sentence
            per input on the noise it drew, and why), and, with a stopping
            rule, `"stopped_step"`.
        """
        spec = self.inspect(model)
        steps = self.num_steps(training_examples)
        length = self.describe_length(training_examples)
        source = self.resolved_noise_source(spec.families)
        stopper = self.stopping_rule()
        if stopper is not None:
            _check_stopper_sees_the_warmup(stopper, self, steps)
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
        leaves, pack = shapes_lib.flatten(spec.input_shape)
        if source == "stream":

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
        callbacks = list(self.callbacks or [])
        if stopper is not None:
            stopper.bind(model, _noise_batch(spec, stopper.num_examples, seed + 1), spec.tasks, steps)
            callbacks.append(stopper)
        verbose = self.verbose
        if verbose != 0:
            print(f"Noise warm-up: {length}", flush=True)
        if verbose == "auto":
            verbose = 1 if _in_terminal() else 0
            if not verbose:
                callbacks.append(_ProgressLines(steps))
        flags = [(layer, layer.trainable) for layer in [model, *_all_layers(model)]]
        try:
            for layer in _resolved_layers(model, self.freeze):
                layer.trainable = False
            if self.batchnorm == "freeze":
                for layer in _batchnorm_layers(model):
                    layer.trainable = False
            if not model.trainable_weights:
                raise ValueError(
                    f"With freeze={self.freeze!r}, model {model.name!r} has no trainable "
                    "weights left to warm up."
                )
            trainer.compile(optimizer=self.make_optimizer(), loss=spec.losses())
            history = trainer.fit(
                dataset,
                epochs=1,
                steps_per_epoch=steps,
                shuffle=False,
                verbose=verbose,
                callbacks=callbacks,
            )
            # Only the BatchNorm layers that were warmed up (not frozen); a
            # model without any draws no batches, whose sampling compiles.
            if self.batchnorm == "recalibrate" and _batchnorm_layers(model):
                recalibrate_batchnorm(
                    model, _noise_batches(spec, RECALIBRATION_BATCHES, self.batch_size, seed + 2)
                )
        finally:
            # The user's trainable flags, every one of them, as they were.
            for layer, trainable in flags:
                layer.trainable = trainable
        history.params["length"] = length
        history.params["noise"] = [
            f"{description}: {family.describe()}"
            for family, description in zip(spec.families, spec.noise_descriptions)
        ]
        if stopper is not None:
            history.params["stopped_step"] = stopper.stopped_step
            history.params["prior_gaps"] = list(stopper.gaps)
        return history

    def get_config(self):
        optimizer = self.optimizer
        if isinstance(optimizer, keras.optimizers.Optimizer):
            optimizer = keras.optimizers.serialize(optimizer)
        recipe = self.recipe.name if recipes.RECIPES.get(self.recipe.name) == self.recipe else None
        if recipe is None:
            raise ValueError("A NoiseWarmup with a custom Recipe object cannot be serialised; use a named recipe.")
        return {
            "num_classes": self.num_classes,
            "num_examples": self.num_examples,
            "steps": self.steps,
            "budget": self.budget,
            "training_examples": self.training_examples,
            "stop": _serialised(self.stop) if not isinstance(self.stop, bool) else self.stop,
            "recipe": recipe,
            "batch_size": self._given_batch_size,
            "optimizer": optimizer,
            "learning_rate": self.learning_rate,
            "noise": _serialised(self.noise),
            "task": _serialised(self.task),
            "from_logits": self.from_logits,
            "batchnorm": self.batchnorm,
            "freeze": self.freeze,
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
        if isinstance(config.get("stop"), dict):
            config["stop"] = keras.saving.deserialize_keras_object(config["stop"])
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
        **kwargs: Any argument of `NoiseWarmup`: `budget` with
            `training_examples`, `num_examples`, `steps`, `stop`, `recipe`,
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


def recalibrate_batchnorm(model, noise_batches):
    """Re-estimates every BatchNorm layer's moving statistics on noise batches.

    The model runs in training mode on each batch (no weight changes), with
    each layer's momentum set so that its moving mean and variance end as
    the average of the batches' statistics; the momentum is restored after.

    Args:
        model: The model.
        noise_batches: A list of model inputs.

    Returns:
        The number of BatchNorm layers re-estimated.
    """
    layers = _batchnorm_layers(model)
    if not layers or not noise_batches:
        return 0
    momenta = [layer.momentum for layer in layers]
    try:
        for index, inputs in enumerate(noise_batches):
            for layer in layers:
                layer.momentum = index / (index + 1.0)
            model(inputs, training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return len(layers)


def _all_layers(model):
    flatten = getattr(model, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=True))
    return list(getattr(model, "layers", []))


def _batchnorm_layers(model):
    return [layer for layer in _all_layers(model)
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]


def _resolved_layers(model, names):
    """The layers of `model` (at any depth) named in `names`."""
    if not names:
        return []
    by_name = {layer.name: layer for layer in _all_layers(model)}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise ValueError(
            f"freeze names layers {missing} that model {model.name!r} does not have "
            f"(its layers include {sorted(by_name)[:10]})."
        )
    return [by_name[name] for name in names]


def _noise_batch(spec, num_examples, seed):
    """`num_examples` noise inputs for the model, as concrete tensors."""
    leaves, pack = shapes_lib.flatten(spec.input_shape)
    generator = keras.random.SeedGenerator(seed % (2**31 - 1))
    return pack([
        family.step_sample((num_examples,) + shape, generator, dtype)
        for family, shape, dtype in zip(spec.families, leaves, spec.input_dtypes)
    ])


def _noise_batches(spec, count, batch_size, seed):
    return [_noise_batch(spec, batch_size, seed + 7919 * (index + 1)) for index in range(count)]


def _layer_names(freeze):
    if freeze is None:
        return None
    if isinstance(freeze, (str, keras.layers.Layer)):
        freeze = [freeze]
    names = []
    for item in freeze:
        if isinstance(item, keras.layers.Layer):
            names.append(item.name)
        elif isinstance(item, str):
            names.append(item)
        else:
            raise ValueError(f"`freeze` takes layers or layer names, got {item!r}.")
    return names


def _stopping_rule(stop):
    if stop is None or stop is False:
        return stop
    if stop is True or stop == "auto":
        return callbacks_stopping.WarmupStopping()
    if isinstance(stop, dict) and "class_name" in stop:
        stop = keras.saving.deserialize_keras_object(stop)
    if isinstance(stop, callbacks_stopping.WarmupStopping):
        return stop
    raise ValueError(
        f"`stop` must be True, False, None or a keras_noisewarm.callbacks.WarmupStopping, got {stop!r}."
    )


def _check_stopper_sees_the_warmup(stopper, warmup, steps=None):
    if steps is None:
        try:
            steps = warmup.num_steps()
        except ValueError:
            return  # A budget whose training is known only at `run`.
    if stopper.checks_needed(steps) > steps:
        raise ValueError(
            f"The stopping rule needs {stopper.patience + 1} checks, every "
            f"{stopper.check_every or 'twentieth of the'} steps, but the warm-up takes at "
            f"most {steps} steps: it would have nothing to watch. Give a longer "
            "warm-up, a smaller check_every or a smaller patience."
        )


def _in_terminal():
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


class _ProgressLines(keras.callbacks.Callback):
    """A few lines of progress for logs and CI, where a progress bar would print per step."""

    def __init__(self, steps, lines=4):
        super().__init__()
        self.steps = steps
        self.marks = sorted({max(1, round(steps * k / lines)) for k in range(1, lines + 1)})

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        if step in self.marks:
            loss = (logs or {}).get("loss")
            loss = f", loss {float(loss):.4f}" if loss is not None else ""
            print(f"  step {step}/{self.steps}{loss}", flush=True)
