"""Command line of the reproduction: `python -m paper compare | reproduce`.

Run from the checkout (the `paper` package is not installed with the library).
"""

import argparse
import dataclasses
import os
import pathlib
import shlex
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")
IN_DISTRIBUTION = ("cifar10", "mnist", "fashion_mnist")
OUT_OF_DISTRIBUTION = ("mnist", "fashion_mnist", "cifar10", "svhn", "gaussian")
from paper.reproduce import TARGETS

REPRODUCE_TARGETS = (*TARGETS, "all")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m paper",
        description="Random-noise warm-up for Keras: experiments from the paper.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    compare = commands.add_parser(
        "compare",
        help="train the same networks with and without warm-up and compare them",
        description=(
            "Train the same architecture from the same initial seeds with and "
            "without noise warm-up; print accuracy, calibration and OOD metrics "
            "(median and spread over seeds, paired Wilcoxon p-values) and write "
            "reliability diagrams and a markdown report. Finished runs are kept "
            "in the cache folder: a rerun trains only what is missing."
        ),
    )
    compare.add_argument("--dataset", default="cifar10", choices=IN_DISTRIBUTION)
    _add_ood(compare)
    compare.add_argument("--architecture", default="mlp", choices=("mlp", "cnn"))
    compare.add_argument("--depth", type=int, default=6,
                         help="layers with weights, the output layer included (default 6)")
    compare.add_argument("--width", type=int, default=256,
                         help="units per hidden layer (MLP) or first-block channels (CNN)")
    compare.add_argument("--train-size", type=int, default=4000)
    compare.add_argument("--test-size", type=int, default=10000)
    compare.add_argument("--epochs", type=int, default=30)
    compare.add_argument("--batch-size", type=int, default=128)
    compare.add_argument("--learning-rate", type=float, default=1e-4)
    compare.add_argument("--seeds", type=_seeds, default=tuple(range(10)),
                         help="number of seeds (10 means 0..9) or a list like 0,3,7")
    compare.add_argument("--warmup-examples", type=int, default=320_000)
    compare.add_argument("--warmup-learning-rate", type=float, default=1e-4)
    _add_common(compare, "outputs/compare")
    compare.add_argument("--quick", action="store_true",
                         help="about a minute: 3 seeds, 500 images shrunk to 8x8, width 128, "
                              "60 epochs, a 750-step warm-up (the effect at a small scale)")

    reproduce = commands.add_parser(
        "reproduce",
        help="reproduce the paper's figures (fig1 ... fig5, backends, alternatives, all)",
        description=(
            "Reproduce the paper's experiments: fig1 (ECE over depth and data "
            "size), fig2 (test loss, reliability and ECE with vs without warm-up, "
            "and the depth x data-size grid), fig3 (2-D toy model), fig4 "
            "(epoch- and accuracy-matched ECE, trajectories), fig5 (OOD "
            "confidence and AUROC), backends (the main comparison under "
            "TensorFlow, JAX and PyTorch), alternatives (warm-up beside temperature "
            "scaling, label smoothing, focal loss, mixup, MC dropout and deep "
            "ensembles, and combined with them), feedback_alignment (the companion "
            "paper: FA with noise pretraining on MNIST and Fashion-MNIST); "
            "all = fig1..fig5. Each writes PNGs "
            "and a markdown section; RESULTS.md collects them. Finished runs are "
            "reused."
        ),
    )
    reproduce.add_argument("targets", nargs="+", choices=REPRODUCE_TARGETS, metavar="target",
                           help=f"one or more of {', '.join(REPRODUCE_TARGETS)}")
    reproduce.add_argument("--seeds", type=_seeds,
                           help="seeds instead of each target's default (a count or a list)")
    _add_ood(reproduce)
    _add_common(reproduce, "outputs/reproduce")
    reproduce.add_argument("--quick", action="store_true",
                           help="tiny sizes: every target in a few minutes on 2 CPU cores")
    return parser


def _add_ood(parser):
    parser.add_argument(
        "--ood", default="mnist", choices=OUT_OF_DISTRIBUTION,
        help="out-of-distribution set (default mnist; the paper's svhn needs "
             "test_32x32.mat in the data folder's svhn/)",
    )


def _add_common(parser, output):
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    parser.add_argument("--data-dir", help="folder with local dataset copies "
                        "(cifar10-subset/, mnist/, fashion-mnist/, svhn/)")
    parser.add_argument("--output", default=output, help=f"results folder (default {output})")
    parser.add_argument("--cache", help="folder of finished runs (default: OUTPUT/runs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.backend and args.backend != os.environ.get("KERAS_BACKEND", "tensorflow"):
        # The backend is fixed when keras is imported: start again with it set.
        environment = dict(os.environ, KERAS_BACKEND=args.backend)
        return subprocess.call(paper_command(argv), env=with_checkout_on_path(environment))
    # Figures are written to files; no display is needed.
    os.environ.setdefault("MPLBACKEND", "Agg")
    import keras

    # The exact command, backend included, for the reports.
    command = "python -m paper " + " ".join(shlex.quote(arg) for arg in argv)
    if not args.backend:
        command = f"KERAS_BACKEND={keras.backend.backend()} {command}"
    if args.command == "compare":
        return run_compare(args, command)
    return run_reproduce(args, command)


def run_compare(args, command):
    from paper import compare
    from paper import report
    from paper import runs

    spec = runs.RunSpec(
        dataset=args.dataset, ood=args.ood, architecture=args.architecture,
        train_size=args.train_size, test_size=args.test_size, depth=args.depth,
        width=args.width, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, warmup_examples=args.warmup_examples,
        warmup_learning_rate=args.warmup_learning_rate,
    )
    seeds = args.seeds
    if args.quick:
        spec = dataclasses.replace(spec, **runs.QUICK_SIZES)
        seeds = seeds[:3]
    for name in ("depth", "width", "train_size", "test_size", "epochs", "batch_size",
                 "warmup_examples"):
        if getattr(spec, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be positive.")
    output = pathlib.Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    store = runs.RunStore(args.cache or output / "runs")
    print(f"{command}\n{len(seeds)} seeds x 2 arms -> {output}")
    results = compare.run_comparison(spec, seeds, store, data_dir=args.data_dir,
                                     verbose=0 if args.quiet else 1)
    rows = report.comparison_rows(results)
    print()
    print(report.format_table(rows))
    figures = compare.save_reliability_diagrams(store, spec, seeds[0], output)
    (output / "report.md").write_text(
        report.markdown_report(rows, spec, seeds, command, results, figures)
    )
    print(f"\nReport and reliability diagrams in {output}/")
    return 0


def run_reproduce(args, command):
    from paper import context as context_lib
    from paper import reproduce

    output = pathlib.Path(args.output)
    context = context_lib.Context(
        output=output,
        cache=pathlib.Path(args.cache) if args.cache else output / "runs",
        quick=args.quick,
        seeds=args.seeds,
        data_dir=args.data_dir,
        ood=args.ood,
        command=command,
        verbose=0 if args.quiet else 1,
    )
    names = []
    for target in args.targets:
        for name in reproduce.ALL if target == "all" else (target,):
            if name not in names:
                names.append(name)
    path = reproduce.reproduce(names, context)
    print(f"\nFigures in {output / 'figures'}/, report: {path}")
    return 0


def paper_command(argv):
    """The command line of `python -m paper ARGV` in a new process."""
    return [sys.executable, "-m", "paper", *argv]


def with_checkout_on_path(environment):
    """`environment` with the checkout on `PYTHONPATH`, so `-m paper` finds it."""
    checkout = str(pathlib.Path(__file__).resolve().parents[1])
    path = environment.get("PYTHONPATH")
    return dict(environment, PYTHONPATH=checkout if not path else f"{checkout}{os.pathsep}{path}")


def _seeds(text):
    if "," in text:
        return tuple(int(seed) for seed in text.split(","))
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError("need at least one seed")
    return tuple(range(count))


if __name__ == "__main__":
    sys.exit(main())
