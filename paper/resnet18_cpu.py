"""The ResNet-18 from-scratch comparison at the scale a 2-core CPU affords.

The setting of `paper.resnet18` scaled down (its `"cpu"` scale): width 8
instead of 64, 5,000 training images instead of 50,000, 10 epochs instead
of 50, and a warm-up of 10% of the training's examples (the paper's ratio)
instead of 780 steps. The full recipe is `reproduce resnet18` on a GPU.
"""

from paper import resnet18


def reproduce(context):
    scale = resnet18.SCALES["quick" if context.quick else "cpu"]
    full = resnet18.SCALES["full"]
    return resnet18.section(context, scale, "ResNet-18 from scratch on CIFAR-10, scaled down for a CPU", [
        "",
        f"Scaled down from the authors' recipe (`reproduce resnet18`): width {scale.width} instead of "
        f"{full.width} (1/{(full.width // scale.width) ** 2} of the multiply-adds), {scale.train_size:,} "
        f"training images instead of 50,000, {scale.epochs} epochs instead of {full.epochs}, "
        f"{scale.test_size:,} held-out images instead of 10,000, and a warm-up of "
        f"{scale.warmup_budget:.0%} of the training's examples (the paper's 0.25M : 2.5M) instead "
        f"of {full.warmup_steps} steps. **The full recipe is unmeasured**: no GPU was lent to this "
        "work.",
    ] if not context.quick else [])
