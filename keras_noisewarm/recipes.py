"""Named warm-up recipes: the authors' two settings, and the package default.

A recipe fixes the warm-up's optimizer, learning rate, batch size and
length; `NoiseWarmup(recipe="resnet")` (or `warmup(model, recipe="mlp")`)
uses one, and any argument given alongside overrides its value.

- `"mlp"`: the authors' MLP recipe (Figs. 1-5 of the paper): Adam, ten epochs
  of 32,000 noise examples (320,000 in all), batch 128. The paper does not
  state the learning rate; 1e-4 is the one we measured to help on the
  six-layer CIFAR-10 MLP (1e-3 made calibration worse), see README.
- `"resnet"`: the authors' ResNet-18 CIFAR-10 code: SGD with learning rate
  0.01, momentum 0.9 and weight decay 0.01, batch 256, about 780 steps
  (about 200,000 noise examples).
- `"default"`: what `warmup(model)` does when told nothing else: Adam 1e-3,
  batch 128, noise examples numbering a tenth of the examples of the
  training that follows (`budget=0.1`, the paper's ratio for ResNet-18),
  and 100 steps when that training's length is not given. Chosen by
  measurement over four settings (`paper/warmup_budget.py`; README,
  "Choosing the warm-up defaults"), where it also says where it does not help.
"""

import dataclasses

import keras


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A warm-up's optimizer, learning rate, batch size and length.

    Attributes:
        name: The recipe's name.
        optimizer: A Keras optimizer config (`keras.optimizers.serialize`
            form) or name.
        learning_rate: The warm-up learning rate.
        batch_size: Noise examples per step.
        num_examples: Noise examples in all (rounded up to whole batches),
            or `None` when `steps` or `budget` says the length.
        steps: Warm-up steps, or `None`.
        budget: The length as a fraction of the training that follows, or
            `None`.
        stop: Whether the warm-up stops on its own once the model sits at its
            prior (`keras_noisewarm.callbacks.WarmupStopping`).
        description: Where the recipe comes from.
    """

    name: str
    optimizer: object
    learning_rate: float
    batch_size: int
    num_examples: int = None
    steps: int = None
    budget: float = None
    stop: bool = False
    description: str = ""

    def make_optimizer(self, learning_rate=None):
        """A fresh optimizer of the recipe (its own learning rate unless given)."""
        optimizer = keras.optimizers.get(self.optimizer)
        config = optimizer.get_config()
        config["learning_rate"] = self.learning_rate if learning_rate is None else learning_rate
        return type(optimizer).from_config(config)


MLP = Recipe(
    name="mlp",
    optimizer="adam",
    learning_rate=1e-4,
    batch_size=128,
    num_examples=320_000,
    description="the authors' MLP recipe: Adam, ten epochs of 32,000 noise examples",
)
RESNET = Recipe(
    name="resnet",
    optimizer={"class_name": "SGD", "config": {"momentum": 0.9, "weight_decay": 0.01}},
    learning_rate=0.01,
    batch_size=256,
    steps=780,
    description="the authors' ResNet-18 code: SGD 0.01, momentum 0.9, weight decay 0.01, batch 256",
)
DEFAULT = Recipe(
    name="default",
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=128,
    budget=0.1,
    num_examples=12_800,
    description=(
        "the package default: Adam 1e-3, batch 128, a tenth of the training's examples "
        "(100 steps when the training's length is unknown), chosen by the budget "
        "measurement of paper/warmup_budget.py"
    ),
)
RECIPES = {"mlp": MLP, "resnet": RESNET, "default": DEFAULT}


def get(identifier):
    """A `Recipe` from a name (`"mlp"`, `"resnet"`, `"default"`), a recipe or `None`.

    Example:

    >>> get("resnet").steps
    780
    """
    if identifier is None:
        return DEFAULT
    if isinstance(identifier, Recipe):
        return identifier
    if isinstance(identifier, str) and identifier.lower() in RECIPES:
        return RECIPES[identifier.lower()]
    raise ValueError(f"Unknown warm-up recipe {identifier!r}: expected one of {sorted(RECIPES)}.")
