"""Command line: `keras-noisewarm compare`, the A/B test on your own model.

    keras-noisewarm compare --model my_project.models:build_model \\
        --data my_project.data:load_data --seeds 5 --epochs 20 --output ab_test

`--model` names a function that returns a new compiled classifier;
`--data` one that returns `((x_train, y_train), (x_val, y_val))` or
`((x_train, y_train), (x_val, y_val), x_ood)`. Finished runs are kept in
`OUTPUT/runs`, so a rerun resumes; the report and reliability diagrams go to
`OUTPUT`.
"""

import argparse
import importlib
import os
import shlex
import sys


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-noisewarm",
        description="Random-noise warm-up for Keras: does it help your model?",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser(
        "compare",
        help="train your model with and without warm-up over paired seeds",
        description=(
            "Train the model built by --model on the data of --data from the same "
            "initial weights with and without noise warm-up, for every seed; "
            "print accuracy, calibration and OOD metrics (median and spread over "
            "seeds, paired Wilcoxon p-values) and write a markdown report."
        ),
    )
    compare.add_argument("--model", required=True, metavar="MODULE:FUNCTION",
                         help="function returning a new compiled classifier")
    compare.add_argument("--data", required=True, metavar="MODULE:FUNCTION",
                         help="function returning ((x_train, y_train), (x_val, y_val)[, x_ood])")
    compare.add_argument("--seeds", type=_seeds, default=(0, 1, 2, 3, 4),
                         help="number of seeds (5 means 0..4) or a list like 0,3,7")
    compare.add_argument("--epochs", type=_positive_int, default=10)
    compare.add_argument("--batch-size", type=_positive_int, default=128)
    compare.add_argument("--warmup-steps", type=_positive_int, help="warm-up steps (default: the package default)")
    compare.add_argument("--warmup-learning-rate", type=float, help="warm-up learning rate")
    compare.add_argument("--output", default="warmup_comparison",
                         help="folder of the runs and the report (default warmup_comparison)")
    compare.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")
    import keras

    import keras_noisewarm

    build_model = load_function(args.model)
    loaded = load_function(args.data)()
    if not isinstance(loaded, (tuple, list)) or len(loaded) not in (2, 3):
        raise SystemExit(
            f"{args.data} must return ((x_train, y_train), (x_val, y_val)) or "
            "((x_train, y_train), (x_val, y_val), x_ood)."
        )
    train, held_out = loaded[0], loaded[1]
    ood = loaded[2] if len(loaded) == 3 else None
    warmup = {}
    if args.warmup_steps:
        warmup["steps"] = args.warmup_steps
    if args.warmup_learning_rate:
        warmup["learning_rate"] = args.warmup_learning_rate
    command = f"KERAS_BACKEND={keras.backend.backend()} keras-noisewarm " + " ".join(
        shlex.quote(arg) for arg in argv
    )
    print(command)
    comparison = keras_noisewarm.compare_warmup(
        build_model, train, held_out, ood_data=ood, seeds=args.seeds, warmup=warmup,
        fit_kwargs={"epochs": args.epochs, "batch_size": args.batch_size},
        directory=os.path.join(args.output, "runs"), key={"model": args.model, "data": args.data},
        verbose=0 if args.quiet else 1,
    )
    print()
    print(comparison.table())
    path = comparison.save_report(args.output, lines=[f"Command: `{command}`"])
    print(f"\nReport and reliability diagrams: {path}")
    return 0


def load_function(spec):
    """The function named by `"package.module:function"`."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise SystemExit(f"Expected MODULE:FUNCTION, got {spec!r}.")
    sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise SystemExit(f"Cannot import {module_name!r}: {error}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise SystemExit(f"{module_name} has no function {function_name!r}.")
    return function


def _seeds(text):
    if "," in text:
        return tuple(int(seed) for seed in text.split(","))
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError("need at least one seed")
    return tuple(range(count))


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


if __name__ == "__main__":
    sys.exit(main())
