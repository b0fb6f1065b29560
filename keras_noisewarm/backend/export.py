"""How a SavedModel is written from each backend.

Keras's `ExportArchive` writes SavedModels from TensorFlow (TensorFlow ops)
and from JAX (through `jax2tf`: the computation is embedded as StableHLO,
lowered for a list of platforms, by default the one JAX runs on). Its
PyTorch path needs `torch_xla`, and in Keras 3.15 even `model.export` of a
Dense model fails inside `torch.export` (a mismatch between the inputs and
their dynamic shapes); a model trained under PyTorch is exported by
TensorFlow from its reloaded `.keras` file instead.
"""

import keras

JAX_PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def exports_in_process():
    """Whether `keras.export.ExportArchive` works under this backend."""
    return keras.backend.backend() in ("tensorflow", "jax")


def endpoint_options(platforms):
    """Keyword arguments of `ExportArchive.add_endpoint` for `platforms`.

    Args:
        platforms: `None`, or the platforms a JAX export is lowered for
            (a name or a sequence of names from `JAX_PLATFORMS`).

    Returns:
        A dict (empty without `platforms`).

    Raises:
        ValueError: On platforms outside JAX, or unknown names.

    Example:

    >>> endpoint_options(None)
    {}
    """
    if platforms is None:
        return {}
    if keras.backend.backend() != "jax":
        raise ValueError(
            "`platforms` sets the platforms of a JAX export (StableHLO); the "
            f"SavedModel of a {keras.backend.backend()} model holds TensorFlow ops, "
            "which run on every platform. Leave it out."
        )
    if isinstance(platforms, str):
        platforms = (platforms,)
    platforms = tuple(platforms)
    unknown = [platform for platform in platforms if platform not in JAX_PLATFORMS]
    if unknown or not platforms:
        raise ValueError(
            f"`platforms` must name some of {JAX_PLATFORMS}, got {platforms!r}."
        )
    return {"jax2tf_kwargs": {"native_serialization_platforms": platforms}}
