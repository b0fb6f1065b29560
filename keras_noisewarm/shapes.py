"""Shapes of one example's inputs: one shape, a list of shapes or a dict.

A model with one input takes noise of one shape; a multi-input model takes
a list (or tuple) of shapes, or a dict of named shapes, and gets one noise
tensor per input in the same structure. These functions normalise such a
structure and flatten it, without `tf.nest` (which would see a shape tuple
as a structure of integers).
"""

import numpy as np


def example_shapes(input_shape, name="input_shape"):
    """Normalises one shape, a list of shapes or a dict of shapes.

    Args:
        input_shape: The shape of one example without the batch dimension
            (an int or a tuple of ints), or a list/tuple/dict of such shapes.
        name: Argument name for the messages.

    Returns:
        A tuple of ints, a tuple of such tuples, or a dict of them.

    Raises:
        ValueError: On an empty structure, an unknown (`None`) dimension or
            a dimension that is not a positive integer.

    Example:

    >>> example_shapes([(4,), 3])
    ((4,), (3,))
    """
    if isinstance(input_shape, dict):
        if not input_shape:
            raise ValueError(f"`{name}` is an empty dict.")
        return {
            key: example_shape(shape, f"{name}[{key!r}]") for key, shape in input_shape.items()
        }
    if _is_single_shape(input_shape):
        return example_shape(input_shape, name)
    if isinstance(input_shape, (list, tuple)) and input_shape:
        return tuple(
            example_shape(shape, f"{name}[{index}]") for index, shape in enumerate(input_shape)
        )
    raise ValueError(
        f"`{name}` must be the shape of one example without the batch "
        "dimension, e.g. (32, 32, 3), or a list/dict of such shapes for a "
        f"multi-input model. Got {input_shape!r}."
    )


def example_shape(shape, name, allow_empty=False):
    """One shape as a tuple of positive ints (an int is a 1-D shape)."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    if not isinstance(shape, (list, tuple)) or (not shape and not allow_empty):
        raise ValueError(
            f"`{name}` must be a non-empty tuple of positive integers "
            f"(without the batch dimension), got {shape!r}."
        )
    for dim in shape:
        if dim is None:
            raise ValueError(
                f"`{name}` has an unknown dimension: {tuple(shape)!r}. Noise "
                "needs a fixed shape; pass the full shape of one example, "
                "e.g. input_shape=(32, 32, 3)."
            )
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim <= 0:
            raise ValueError(f"`{name}` must contain positive integers, got {tuple(shape)!r}.")
    return tuple(int(dim) for dim in shape)


def flatten(structure):
    """A flat list of a structure's leaves and the function that packs them back.

    Args:
        structure: What `example_shapes` returns (a shape, a tuple of shapes
            or a dict), or any value standing for one input (then a list of
            one).

    Returns:
        `(leaves, pack)`: `pack(list)` rebuilds the structure.

    Example:

    >>> leaves, pack = flatten({"a": (2,), "b": (3,)})
    >>> leaves, pack(["x", "y"])
    ([(2,), (3,)], {'a': 'x', 'b': 'y'})
    """
    if isinstance(structure, dict):
        names = list(structure)
        return [structure[key] for key in names], lambda flat: dict(zip(names, flat))
    if isinstance(structure, tuple) and structure and isinstance(structure[0], tuple):
        return list(structure), tuple
    return [structure], lambda flat: flat[0]


def matching(values, structure, name):
    """One value per leaf of `structure`: a single value is repeated.

    Args:
        values: One value for every input, or a list/tuple/dict with one
            value per input, structured like `structure`.
        structure: Normalised example shapes.
        name: Argument name for the messages.

    Returns:
        A flat list of values, in the order of `flatten(structure)`.
    """
    leaves, _ = flatten(structure)
    if isinstance(structure, dict):
        if isinstance(values, dict):
            if set(values) != set(structure):
                raise ValueError(
                    f"`{name}` must have the keys of the model's inputs "
                    f"{sorted(structure)}, got {sorted(values)}."
                )
            return [values[key] for key in structure]
        return [values] * len(leaves)
    if isinstance(values, (list, tuple)) and len(leaves) > 1:
        if len(values) != len(leaves):
            raise ValueError(
                f"`{name}` has {len(values)} entries for a model with "
                f"{len(leaves)} inputs."
            )
        return list(values)
    return [values] * len(leaves)


def _is_single_shape(value):
    if isinstance(value, (int, np.integer)):
        return True
    return isinstance(value, (list, tuple)) and all(
        isinstance(dim, (int, np.integer)) or dim is None for dim in value
    )
