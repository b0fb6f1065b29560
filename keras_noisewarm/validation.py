"""Argument checks shared by the constructors of the package.

Every public class checks its arguments in `__init__`, with these
functions, so that an object that cannot work is never built (nor
serialised). Each check raises `ValueError` naming the argument, what it
must be and what it got; it returns the value, normalised where that is
useful (a NumPy integer becomes an `int`).
"""

import math

import numpy as np


def check_int(name, value, minimum=1):
    """An integer of at least `minimum` (booleans are refused).

    Example:

    >>> check_int("steps", 3)
    3
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer, got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
    return int(value)


def check_optional_int(name, value, minimum=1):
    """`None`, or an integer of at least `minimum`."""
    return None if value is None else check_int(name, value, minimum)


def check_number(name, value, minimum=None, maximum=None, strict=True):
    """A finite real number within optional bounds.

    Args:
        name: Argument name for the message.
        value: The value to check.
        minimum: Lower bound, or `None`.
        maximum: Upper bound, or `None`.
        strict: Whether the bounds themselves are excluded.

    Returns:
        `value` as a Python float.

    Example:

    >>> check_number("alpha", 0.1, minimum=0, maximum=1)
    0.1
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number, got {value!r}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value!r}.")
    below = minimum is not None and (value <= minimum if strict else value < minimum)
    above = maximum is not None and (value >= maximum if strict else value > maximum)
    if below or above:
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        interval = ("(" if strict else "[") + f"{low}, {high}" + (")" if strict else "]")
        raise ValueError(f"`{name}` must lie in {interval}, got {value!r}.")
    return value


def check_positive_number(name, value):
    """A finite number greater than 0.

    Example:

    >>> check_positive_number("temperature", 2)
    2.0
    """
    try:
        return check_number(name, value, minimum=0.0)
    except ValueError:
        raise ValueError(f"`{name}` must be a positive finite number, got {value!r}.") from None


def check_fraction(name, value):
    """A number strictly between 0 and 1 (a miscoverage level, a share)."""
    return check_number(name, value, minimum=0.0, maximum=1.0)


def check_choice(name, value, choices):
    """One of `choices`.

    Example:

    >>> check_choice("norm", "l1", ("l1", "l2", "max"))
    'l1'
    """
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {tuple(choices)}, got {value!r}.")
    return value


def check_bool(name, value):
    """`True` or `False`."""
    if value not in (True, False) or not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"`{name}` must be True or False, got {value!r}.")
    return bool(value)


def check_from_logits(value):
    """`True`, `False` or `None` (detect): the package's `from_logits` rule."""
    if value is not None and not isinstance(value, (bool, np.bool_)):
        raise ValueError(
            f"`from_logits` must be True, False or None (detect it from the "
            f"values), got {value!r}."
        )
    return None if value is None else bool(value)


def check_seed(name, value):
    """`None` or a non-negative integer seed."""
    if value is None:
        return None
    return check_int(name, value, minimum=0)


def check_ignore_label(value, sparse_y_true=True):
    """`None`, or an integer label whose predictions a metric leaves out.

    Any integer is accepted (255 for segmentation masks, -1 or -100 for
    padding); it needs integer labels (`sparse_y_true=True`).

    Example:

    >>> check_ignore_label(255)
    255
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`ignore_label` must be an integer label or None, got {value!r}.")
    if not sparse_y_true:
        raise ValueError(
            "`ignore_label` needs integer labels (sparse_y_true=True): a one-hot "
            "label cannot hold it."
        )
    return int(value)
