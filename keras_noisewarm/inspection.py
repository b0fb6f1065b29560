"""What the warm-up needs to know about a model, found before any training.

`inspect_model` looks at a model once, with one small forward pass in
inference mode, and answers: what shapes and dtypes its inputs have and which
noise each of them gets, what each output predicts (its task, see
`keras_noisewarm.tasks`) and what a warm-up target for it looks like. Every
error a user can make is raised here, before any weight changes.
"""

import dataclasses

import keras
import numpy as np

from keras_noisewarm import noise as noise_lib
from keras_noisewarm.noise import scale as noise_scale
from keras_noisewarm import shapes as shapes_lib
from keras_noisewarm import tasks as tasks_lib
from keras_noisewarm import validation

_PROBE_BATCH_SIZE = 8


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to feed a model noise and what to train its outputs towards.

    Attributes:
        input_shape: Shape of one example (a tuple), or a tuple/dict of shapes
            for a multi-input model.
        input_dtypes: The dtype of each input, in flattened order.
        families: The noise family of each input, in flattened order.
        noise_descriptions: Why each input got its family (which rule of
            `keras_noisewarm.noise.scale` chose a default), flattened order.
        tasks: The task of each output (`keras_noisewarm.tasks.Task`), in the
            order of `keras.tree.flatten` of the outputs.
        target_shapes: Shape of one example's target for each output.
        output_structure: The model's output as returned by one call (a
            tensor, or a list/tuple/dict of them), to pack targets alike.
    """

    input_shape: object
    input_dtypes: tuple
    families: tuple
    noise_descriptions: tuple
    tasks: tuple
    target_shapes: tuple
    output_structure: object

    @property
    def single_output(self):
        return len(self.tasks) == 1

    @property
    def task(self):
        """The task of a single-output model."""
        if not self.single_output:
            raise ValueError(f"The model has {len(self.tasks)} outputs.")
        return self.tasks[0]

    # What a single-output classifier used to be described by.
    @property
    def num_classes(self):
        task = self.task
        if isinstance(task, tasks_lib.Classification):
            return task.num_classes
        if isinstance(task, tasks_lib.Binary):
            return 2
        raise ValueError(f"The model's output is a {task.name} output, not a classifier.")

    @property
    def from_logits(self):
        return self.task.from_logits

    @property
    def binary(self):
        return isinstance(self.task, tasks_lib.Binary)

    @property
    def label_shape(self):
        return self.target_shapes[0]

    @property
    def input_dtype(self):
        return self.input_dtypes[0]

    def losses(self):
        """The warm-up loss, one per output (a single loss for one output)."""
        losses = [task.loss() for task in self.tasks]
        return losses[0] if self.single_output else self.pack_outputs(losses)

    def pack_outputs(self, flat):
        """`flat` (one value per output) in the structure of the outputs."""
        if self.single_output:
            return flat[0]
        return keras.tree.pack_sequence_as(self.output_structure, flat)


def inspect_model(model, num_classes=None, task=None, input_shape=None, from_logits=None,
                  noise=None, data=None):
    """Checks that the warm-up can handle `model` and says how.

    Args:
        model: A Keras model.
        num_classes: Number of classes of a classifier, or `None` to take it
            from the width of its output. For several outputs, one per
            output (a list, or a dict keyed by output names) or `None`.
        task: The task of the output (`keras_noisewarm.tasks`: a name or a
            `Task`), one per output for several, or `None` to infer it.
        input_shape: Shape of one example without the batch dimension, or
            `None` to read it from `model.inputs`.
        from_logits: `True`/`False` to state what a classifier's outputs
            are, or `None` to detect it.
        noise: A noise family (or one per input), or `None` for the default
            of each input (see `family_for_input`).
        data: A sample of the training inputs (one array, or one per input
            like `input_shape`), for noise of the data's scale; or `None`.

    Returns:
        A `ModelSpec`.

    Raises:
        ValueError: with what to do, if the input shape cannot be inferred,
            an input cannot get noise, an output's task cannot be inferred or
            does not fit it.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"Expected a keras.Model, got {type(model).__name__}.")
    validation.check_from_logits(from_logits)
    if input_shape is None:
        input_shape, dtypes = _symbolic_input_shapes(model)
    else:
        input_shape = shapes_lib.example_shapes(input_shape)
        dtypes = _input_dtypes(model, input_shape)
    leaves, pack = shapes_lib.flatten(input_shape)
    consumers = _input_consumers(model, len(leaves))
    given = shapes_lib.matching(noise, input_shape, "noise") if noise is not None else [None] * len(leaves)
    samples = _data_samples(data, input_shape, leaves)
    chosen = [
        family_for_input(model, shape, dtype, consumer, family, sample)
        for shape, dtype, consumer, family, sample in zip(leaves, dtypes, consumers, given, samples)
    ]
    families = tuple(family for family, _ in chosen)

    probe_inputs = pack([
        family.step_sample((_PROBE_BATCH_SIZE,) + shape, keras.random.SeedGenerator(index), dtype)
        for index, (family, shape, dtype) in enumerate(zip(families, leaves, dtypes))
    ])
    outputs = _probe(model, probe_inputs, input_shape)
    flat_outputs = keras.tree.flatten(outputs)
    output_names = _output_names(model, outputs, len(flat_outputs))
    per_output = dict(
        num_classes=_per_output(num_classes, output_names, "num_classes"),
        task=_per_output(task, output_names, "task"),
        loss=_compiled_losses(model, output_names),
        activation=_output_activations(model, len(flat_outputs)),
    )
    tasks, target_shapes = [], []
    for index, probe in enumerate(flat_outputs):
        output_shape = tuple(probe.shape[1:])
        name = model.name if len(flat_outputs) == 1 else f"{model.name} (output {output_names[index]})"
        output_task = tasks_lib.infer_task(
            output_shape, probe, per_output["activation"][index], per_output["loss"][index],
            per_output["num_classes"][index], _copied(per_output["task"][index]), from_logits,
            name,
        )
        tasks.append(output_task)
        target_shapes.append(output_task.target_shape(output_shape))
        _check_loss_fits(output_task, target_shapes[-1], probe, name)
    return ModelSpec(
        input_shape=input_shape,
        input_dtypes=tuple(dtypes),
        families=families,
        noise_descriptions=tuple(description for _, description in chosen),
        tasks=tuple(tasks),
        target_shapes=tuple(target_shapes),
        output_structure=outputs,
    )


def family_for_input(model, shape, dtype, consumer, family=None, data=None):
    """The noise family of one input, checked against it, and why it was chosen.

    Args:
        model: The model, for messages.
        shape: Shape of one example of the input.
        dtype: The input's dtype.
        consumer: The first layer that reads the input's values (past
            spatial augmentation layers), or `None`.
        family: The user's family for it, or `None` for the default: token
            ids for an input read by an `Embedding` (its vocabulary, padding
            id 0 when it masks zeros), uniform noise over `[0, 255]` for
            uint8 images, and for float inputs noise on the model's own input
            scale (`keras_noisewarm.noise.scale.default_noise`: from `data`,
            a first `Normalization` or `Rescaling` layer, else `N(0, 1)`).
        data: A sample of the input's training data, or `None`.

    Returns:
        `(family, description)`.
    """
    embedding = consumer if isinstance(consumer, keras.layers.Embedding) else None
    description = "as given"
    if family is None:
        if embedding is not None:
            family = noise_lib.Tokens(
                embedding.input_dim, padding_id=0 if embedding.mask_zero else None
            )
            description = f"token ids of the Embedding {embedding.name!r}"
        elif dtype == "uint8":
            family = noise_lib.Uniform(mean=127.5, std=255.0 / np.sqrt(12.0))
            description = "uniform over the uint8 range [0, 255], rounded"
        elif "int" in dtype or "bool" in dtype:
            raise ValueError(
                f"Model {model.name!r} has an input of dtype {dtype} that no "
                "Embedding layer reads, so its vocabulary is unknown. Gaussian "
                "or uniform noise only makes sense for floating inputs; for token "
                "ids pass noise=keras_noisewarm.noise.Tokens(vocabulary_size)."
            )
        else:
            family, description = noise_scale.default_noise(shape, consumer, data)
    family = noise_lib.get(family)
    if embedding is not None and not isinstance(family, (noise_lib.Tokens, noise_lib.Custom)):
        raise ValueError(
            f"An Embedding layer ({embedding.name!r}) reads an input of model "
            f"{model.name!r}, so the input holds token ids; {family.describe()} "
            "would be cast to ids. Pass noise=keras_noisewarm.noise.Tokens("
            f"{embedding.input_dim}) (the default for such inputs) or leave "
            "noise out."
        )
    family.check(shape, dtype)
    return family, description


def _data_samples(data, input_shape, leaves):
    if data is None:
        return [None] * len(leaves)
    samples = shapes_lib.matching(data, input_shape, "data") if len(leaves) > 1 else [data]
    for sample, shape in zip(samples, leaves):
        sample_shape = tuple(np.shape(sample))[1:]
        if sample_shape != tuple(shape):
            raise ValueError(
                f"The data sample has examples of shape {sample_shape}, but the "
                f"model's input takes {tuple(shape)}."
            )
    return samples


def _check_loss_fits(task, target_shape, probe, model_name):
    """Computes the warm-up loss once on the probe, so a mismatch fails now."""
    import tensorflow as tf

    seed = tf.constant([0, 0], tf.int64)
    targets = keras.ops.convert_to_numpy(task.stream_targets((len(probe),) + tuple(target_shape), seed))
    try:
        value = keras.ops.convert_to_numpy(task.loss()(
            keras.ops.convert_to_tensor(targets), keras.ops.convert_to_tensor(probe.astype("float32"))
        ))
    except Exception as error:  # noqa: BLE001 - any failure here is a mismatch
        raise ValueError(
            f"The warm-up targets of model {model_name!r} ({task!r}: shape "
            f"{tuple(target_shape)} per example) do not fit its output of shape "
            f"{tuple(probe.shape[1:])} under the loss {task.loss()!r}: {error}. Give a "
            "task whose targets are shaped like the labels the model trains on."
        ) from None
    if not np.all(np.isfinite(value)):
        raise ValueError(
            f"The warm-up loss of model {model_name!r} is not finite on its own outputs "
            f"({task!r}); check the task and the loss."
        )


def _copied(task):
    # Tasks resolve their from_logits in place; never the user's own object.
    if isinstance(task, tasks_lib.Task):
        return type(task).from_config(task.get_config())
    return task


def _symbolic_inputs(model):
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    return list(inputs) if inputs else None


def _symbolic_input_shapes(model):
    inputs = _symbolic_inputs(model)
    if inputs is None:
        built_shape = _built_input_shape(model)
        if built_shape is not None:
            return shapes_lib.example_shapes(built_shape), [keras.backend.floatx()]
        raise ValueError(
            f"Cannot infer the input shape of model {model.name!r}: it has no "
            "symbolic inputs (a subclassed model, or a Sequential model built "
            "without keras.Input) and has not been built. Pass the shape of one "
            "example without the batch dimension, e.g. warmup(model, "
            "num_classes=10, input_shape=(32, 32, 3)), or start the model with "
            "keras.Input(shape=...)."
        )
    shapes = []
    for tensor in inputs:
        shape = tuple(tensor.shape[1:])
        if any(dim is None for dim in shape):
            raise ValueError(
                f"Model {model.name!r} has an input of shape {tuple(tensor.shape)} "
                "with an unknown dimension, so the noise shape is not defined. "
                "Pass the full shape of one example, e.g. warmup(model, "
                "num_classes=10, input_shape=(224, 224, 3))."
            )
        shapes.append(shape)
    dtypes = [keras.backend.standardize_dtype(tensor.dtype) for tensor in inputs]
    structure = getattr(model, "_inputs_struct", None)
    if isinstance(structure, dict) and len(structure) == len(shapes):
        names = list(structure)
        by_tensor = {id(tensor): index for index, tensor in enumerate(inputs)}
        order = [by_tensor.get(id(structure[name])) for name in names]
        if None not in order:
            return (
                {name: shapes[index] for name, index in zip(names, order)},
                [dtypes[index] for index in order],
            )
    return (shapes[0] if len(shapes) == 1 else tuple(shapes)), dtypes


def _built_input_shape(model):
    """The example shape a built subclassed model was called with, if known."""
    shape = getattr(model, "_build_shapes_dict", None)
    if isinstance(shape, dict) and len(shape) == 1:
        (value,) = shape.values()
        if isinstance(value, (list, tuple)) and len(value) > 1 and None not in value[1:]:
            return tuple(value[1:])
    return None


def _input_dtypes(model, input_shape):
    leaves, _ = shapes_lib.flatten(input_shape)
    inputs = _symbolic_inputs(model)
    if inputs is None or len(inputs) != len(leaves):
        return [keras.backend.floatx()] * len(leaves)
    return [keras.backend.standardize_dtype(tensor.dtype) for tensor in inputs]


def _input_consumers(model, count):
    """The first layer reading each symbolic input's values (or `None`).

    Spatial augmentation layers in front (`SPATIAL_AUGMENTATIONS`, alone or
    in a `Sequential` block of their own) move pixels without changing
    their values, so the layer after them is the one that says the input's
    scale (a `Rescaling` after a `RandomFlip`, as in the Keras tutorials).
    """
    inputs = _symbolic_inputs(model)
    if inputs is None or len(inputs) != count:
        return [None] * count
    consumers = [_reader_of(model, [tensor]) for tensor in inputs]
    if isinstance(model, keras.Sequential) and count == 1 and consumers[0] is None:
        layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        consumers = [layers[0] if layers else None]
    return [_past_augmentation(model, consumer) for consumer in consumers]


# Augmentation layers that move pixels but keep their values (the noise
# keeps its scale through them).
SPATIAL_AUGMENTATIONS = (
    keras.layers.RandomFlip,
    keras.layers.RandomCrop,
    keras.layers.RandomRotation,
    keras.layers.RandomTranslation,
    keras.layers.RandomZoom,
)


def _is_spatial_augmentation(layer):
    if isinstance(layer, keras.Sequential):
        return bool(layer.layers) and all(isinstance(inner, SPATIAL_AUGMENTATIONS) for inner in layer.layers)
    return isinstance(layer, SPATIAL_AUGMENTATIONS)


def _past_augmentation(model, layer):
    """`layer`, or the first layer after it that is not a spatial augmentation."""
    while layer is not None and _is_spatial_augmentation(layer):
        if isinstance(model, keras.Sequential) and layer in model.layers:
            index = model.layers.index(layer)
            layer = model.layers[index + 1] if index + 1 < len(model.layers) else None
            continue
        outputs = [tensor for node in getattr(layer, "_inbound_nodes", []) for tensor in node.output_tensors]
        layer = _reader_of(model, outputs)
    return layer


def _reader_of(model, tensors):
    """The first layer of `model` (not an InputLayer) that reads one of `tensors`."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        nodes = getattr(layer, "_inbound_nodes", [])
        if any(any(t is tensor for tensor in tensors for t in node.input_tensors) for node in nodes):
            return layer
    return None


def _probe(model, probe_inputs, input_shape):
    """One forward pass in inference mode on a few noise examples."""
    try:
        outputs = model(probe_inputs, training=False)
    except Exception as error:
        raise ValueError(
            f"Model {model.name!r} could not be called on noise of shape "
            f"{input_shape} (batch dimension excluded): {error}. If the shape "
            "is wrong, pass input_shape=... explicitly."
        ) from error
    flat = []
    for tensor in keras.tree.flatten(outputs):
        dtype = keras.backend.standardize_dtype(tensor.dtype)
        array = keras.ops.convert_to_numpy(tensor)
        if "float" not in dtype or array.ndim < 2:
            raise ValueError(
                f"Model {model.name!r} returns outputs of shape {array.shape} and "
                f"dtype {dtype}; the warm-up needs floating outputs of shape "
                "(batch, ..., units)."
            )
        if not np.all(np.isfinite(array.astype(np.float64))):
            raise ValueError(
                f"Model {model.name!r} returns NaN or Inf on noise; check its "
                "initialisation before warming it up."
            )
        # Kept in their own dtype: whether rows sum to one is judged within
        # that dtype's tolerance (a bfloat16 softmax sums to 0.996).
        flat.append(array)
    return keras.tree.pack_sequence_as(outputs, flat)


def _output_names(model, outputs, count):
    if isinstance(outputs, dict):
        return sorted(outputs)
    names = getattr(model, "output_names", None)
    if names and len(names) == count:
        return list(names)
    return [str(index) for index in range(count)]


def _per_output(value, names, argument):
    if isinstance(value, dict):
        unknown = set(value) - set(names)
        if unknown:
            raise ValueError(f"`{argument}` names outputs {sorted(unknown)}; the outputs are {names}.")
        return [value.get(name) for name in names]
    if isinstance(value, (list, tuple)):
        if len(value) != len(names):
            raise ValueError(f"`{argument}` has {len(value)} entries for {len(names)} outputs.")
        return list(value)
    if len(names) > 1 and value is not None and argument == "task":
        raise ValueError(
            f"The model has {len(names)} outputs {names}: give `task` as a list or "
            "a dict with one task per output."
        )
    return [value] * len(names)


def _compiled_losses(model, names):
    loss = getattr(model, "loss", None) if getattr(model, "compiled", False) else None
    if loss is None:
        return [None] * len(names)
    if isinstance(loss, dict):
        return [loss.get(name) for name in names]
    if isinstance(loss, (list, tuple)):
        losses = list(loss)
        return losses if len(losses) == len(names) else [None] * len(names)
    return [loss] * len(names)


def _output_activations(model, count):
    """The activation name of the layer that produces each output, or `None`."""
    layers = []
    outputs = None
    try:
        outputs = model.outputs
    except (AttributeError, ValueError):
        outputs = None
    if outputs and len(outputs) == count:
        for tensor in outputs:
            history = getattr(tensor, "_keras_history", None)
            layers.append(getattr(history, "operation", None))
    elif count == 1 and getattr(model, "layers", None):
        layers = [model.layers[-1]]
    else:
        return [None] * count
    return [_activation_name(layer) for layer in layers]


def _activation_name(layer):
    if layer is None:
        return None
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    if isinstance(layer, keras.Model) and getattr(layer, "layers", None):
        return _activation_name(layer.layers[-1])
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None)
