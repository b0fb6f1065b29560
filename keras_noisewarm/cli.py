"""Command line: `keras-noisewarm compare ...` (or `python -m keras_noisewarm`)."""

import argparse
import os
import pathlib
import shlex
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-noisewarm",
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
            "reliability diagrams and a markdown report."
        ),
    )
    compare.add_argument("--dataset", default="cifar10", choices=["cifar10"])
    compare.add_argument("--ood", default="mnist", choices=["mnist", "fashion_mnist", "gaussian"],
                         help="out-of-distribution set (SVHN is not available offline)")
    compare.add_argument("--depth", type=int, default=6, help="Dense layers, output included")
    compare.add_argument("--width", type=int, default=256)
    compare.add_argument("--train-size", type=int, default=4000)
    compare.add_argument("--test-size", type=int, default=10000)
    compare.add_argument("--epochs", type=int, default=30)
    compare.add_argument("--seeds", type=_seeds, default=tuple(range(10)),
                         help="number of seeds (10 means 0..9) or a list like 0,3,7")
    compare.add_argument("--warmup-examples", type=int, default=320_000)
    compare.add_argument("--warmup-learning-rate", type=float, default=1e-4)
    compare.add_argument("--backend", choices=BACKENDS,
                         help="Keras backend (default: $KERAS_BACKEND or tensorflow)")
    compare.add_argument("--data-dir", help="folder with local dataset copies")
    compare.add_argument("--output", default="outputs/compare", help="results folder")
    compare.add_argument("--quick", action="store_true",
                         help="tiny sizes (2 seeds, 500 images, 2 epochs): a smoke run")
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.backend and args.backend != os.environ.get("KERAS_BACKEND"):
        # The backend is fixed when keras is imported: start again with it set.
        environment = dict(os.environ, KERAS_BACKEND=args.backend)
        return subprocess.call(
            [sys.executable, "-m", "keras_noisewarm", *argv], env=environment
        )
    return run_compare(args, argv)


def run_compare(args, argv):
    from keras_noisewarm.experiments import compare
    from keras_noisewarm.experiments import data
    from keras_noisewarm.experiments import report

    if args.quick:
        args.train_size, args.test_size, args.epochs = 500, 500, 2
        args.width, args.warmup_examples = 64, 128 * 50
        args.seeds = args.seeds[:2]
    for name in ("depth", "width", "train_size", "test_size", "epochs", "warmup_examples"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be positive.")
    config = compare.CompareConfig(
        dataset=args.dataset, ood=args.ood, train_size=args.train_size,
        test_size=args.test_size, depth=args.depth, width=args.width,
        epochs=args.epochs, warmup_examples=args.warmup_examples,
        warmup_learning_rate=args.warmup_learning_rate, seeds=args.seeds,
    )
    task = data.load_task(args.dataset, args.ood, args.train_size, args.test_size,
                          data_dir=args.data_dir)
    import keras

    output = pathlib.Path(args.output)
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}; "
          f"{len(config.seeds)} seeds x 2 arms -> {output}")
    results = compare.run_comparison(task, config, output)
    rows = report.comparison_rows(results)
    print()
    print(report.format_table(rows))
    command = "keras-noisewarm " + " ".join(shlex.quote(arg) for arg in argv)
    (output / "report.md").write_text(
        report.markdown_report(rows, config, task, command, results)
    )
    print(f"\nReport and reliability diagrams in {output}/")
    return 0


def _seeds(text):
    if "," in text:
        return tuple(int(seed) for seed in text.split(","))
    count = int(text)
    if count < 1:
        raise argparse.ArgumentTypeError("need at least one seed")
    return tuple(range(count))


if __name__ == "__main__":
    sys.exit(main())
