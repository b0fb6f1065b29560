"""Noise warm-up for a character-level language model, on text that ships with Python.

The text is CPython's own help pages (`pydoc_data.topics`, what `help("if")`
prints), so nothing is downloaded. Paragraphs are cut into sequences of at
most 64 characters and padded with id 0, which the `Embedding` masks
(`mask_zero=True`) and the loss and the metrics ignore. The model (Embedding
-> GRU -> Dense) predicts the next character at every position. With and
without a noise warm-up from the same initial weights, for paired seeds:
the warm-up infers random token ids from the `Embedding` (its vocabulary,
padding 0) and a per-position random next character as the target.
Measured on held-out text: next-character ECE (padding left out), NLL in
nats per character, perplexity `exp(NLL)`, accuracy; medians, quartiles,
seeds improved, paired Wilcoxon p.

    python examples/char_language_model.py           # 5 seeds, about 8 minutes on 2 CPU cores
    python examples/char_language_model.py --fast    # seconds: tiny sizes
    python examples/char_language_model.py --select  # choose the settings on held-out training text

The settings (`SETTINGS`) are set by hand, not by a finished `--select`
sweep (one was cut short); `--select` chooses them on text held out from
the training part, never on the test part.
"""

import argparse
import dataclasses
import math
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_noisewarm  # noqa: E402
from keras_noisewarm import compare  # noqa: E402
from keras_noisewarm import metrics  # noqa: E402
from keras_noisewarm import paired_runs  # noqa: E402

PADDING_ID = 0
UNKNOWN_ID = 1
METRICS = (
    ("ece", "next-char ECE", True),
    ("nll", "NLL (nats/char)", True),
    ("perplexity", "perplexity", True),
    ("accuracy", "next-char accuracy", False),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes, training and warm-up of one comparison."""

    sequence_length: int = 64
    train_sequences: int = 3000
    validation_sequences: int = 600
    test_sequences: int = 1500
    embedding_size: int = 32
    units: int = 128
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 3e-3
    warmup_steps: int = 200
    warmup_learning_rate: float = 1e-3
    seeds: tuple = (0, 1, 2, 3, 4)


SETTINGS = Settings()
FAST = dataclasses.replace(SETTINGS, sequence_length=24, train_sequences=64, validation_sequences=16,
                           test_sequences=32, embedding_size=8, units=16, epochs=1, batch_size=32,
                           warmup_steps=3, seeds=(0,))
SELECTION_GRID = {"warmup_steps": (50, 200), "warmup_learning_rate": (1e-4, 1e-3)}
SELECTION_EPOCHS = (4, 8)
SELECTION_SEEDS = (100, 101, 102)


def help_text():
    """The help pages of this Python, in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def sequences(text, vocabulary, length):
    """Paragraphs cut into `(inputs, next characters)` of `length`, padded with 0."""
    ids = {character: index for index, character in enumerate(vocabulary)}
    rows = []
    for paragraph in text.split("\n\n"):
        paragraph = paragraph.strip("\n")
        for start in range(0, len(paragraph) - 1, length):
            chunk = [ids.get(character, UNKNOWN_ID) for character in paragraph[start:start + length + 1]]
            if len(chunk) > 1:
                rows.append(chunk + [PADDING_ID] * (length + 1 - len(chunk)))
    rows = np.array(rows, "int32")
    return rows[:, :-1], rows[:, 1:]


def load_data(settings, seed=0):
    """Training, held-out training (validation) and test sequences.

    The first 80% of the text is the training part (the vocabulary is read
    from it; unseen characters become id 1) and its last sequences are
    held out for choosing settings; the last 20% is the test part.
    """
    text = help_text()
    cut = int(0.8 * len(text))
    train_text, test_text = text[:cut], text[cut:]
    vocabulary = ["<pad>", "<unk>"] + sorted(set(train_text) - {"\x00"})
    x, y = sequences(train_text, vocabulary, settings.sequence_length)
    x_test, y_test = sequences(test_text, vocabulary, settings.sequence_length)
    rng = np.random.default_rng(seed)
    held_out = settings.validation_sequences
    train = rng.permutation(len(x) - held_out)[: settings.train_sequences]
    test = rng.permutation(len(x_test))[: settings.test_sequences]
    return {
        "vocabulary": vocabulary,
        "train": (x[train], y[train]),
        "validation": (x[-held_out:], y[-held_out:]),
        "test": (x_test[test], y_test[test]),
    }


def build_model(settings, vocabulary_size):
    """Embedding (padding 0 masked) -> GRU -> next-character logits at every position."""
    inputs = keras.Input((settings.sequence_length,), dtype="int32")
    x = keras.layers.Embedding(vocabulary_size, settings.embedding_size, mask_zero=True)(inputs)
    x = keras.layers.GRU(settings.units, return_sequences=True)(x)
    outputs = keras.layers.Dense(vocabulary_size)(x)
    model = keras.Model(inputs, outputs, name="char_gru")
    model.compile(
        optimizer=keras.optimizers.Adam(settings.learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PADDING_ID),
    )
    return model


def measure(logits, labels):
    """Next-character calibration and accuracy of logits `(N, L, V)`, padding left out."""
    values = {}
    for name, metric in (
        ("ece", metrics.ExpectedCalibrationError(num_bins=15, from_logits=True, ignore_label=PADDING_ID)),
        ("nll", metrics.NegativeLogLikelihood(from_logits=True, ignore_label=PADDING_ID)),
    ):
        metric.update_state(labels, logits)
        values[name] = float(metric.result())
    values["perplexity"] = math.exp(values["nll"])
    kept = labels != PADDING_ID
    values["accuracy"] = float(np.mean(logits.argmax(axis=-1)[kept] == labels[kept]))
    return values


def run(settings, data, seed, arm, evaluate_on="test", epochs=None):
    """Trains one model (warmed up or not) from the seed's weights; measures it."""
    keras.utils.set_random_seed(seed)
    model = build_model(settings, len(data["vocabulary"]))
    numbers = {"seed": seed, "arm": arm}
    if arm == "warmup":
        keras_noisewarm.warmup(
            model, steps=settings.warmup_steps, learning_rate=settings.warmup_learning_rate,
            batch_size=32, seed=seed + compare.WARMUP_SEED_OFFSET, verbose=0,
        )
    numbers["noise_confidence"] = keras_noisewarm.noise_confidence(model, num_examples=64).mean_confidence
    keras.utils.set_random_seed(seed + compare.DATA_ORDER_SEED_OFFSET)
    x_train, y_train = data["train"]
    model.fit(x_train, y_train, batch_size=settings.batch_size, epochs=epochs or settings.epochs,
              verbose=0)
    x, y = data[evaluate_on]
    logits = model.predict(x, batch_size=256, verbose=0)
    numbers.update(measure(logits, y))
    return numbers, logits


def compare_arms(settings, data, output=None, verbose=True):
    """Both arms for every seed; the runs and the rows of `comparison_rows`."""

    def run_pair_member(seed, arm):
        numbers, logits = run(settings, data, seed, arm)
        return numbers, {"logits": logits, "labels": data["test"][1]}

    runs = paired_runs.run_arms(run_pair_member, settings.seeds, output, verbose)
    return runs, compare.comparison_rows(runs, metrics=METRICS)


def select(settings, verbose=True):
    """Chooses the epochs, then the warm-up, by held-out validation NLL."""
    data = load_data(settings)

    def validation_nll(changes, arm):
        chosen = dataclasses.replace(settings, **changes)
        return [run(chosen, data, seed, arm, evaluate_on="validation")[0]["nll"]
                for seed in SELECTION_SEEDS]

    return paired_runs.choose_on_validation(validation_nll, SELECTION_EPOCHS, SELECTION_GRID, verbose)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny sizes: seconds")
    parser.add_argument("--select", action="store_true",
                        help="choose epochs and warm-up on held-out training text")
    parser.add_argument("--seeds", type=int, help="number of seeds (default 5, 1 with --fast)")
    parser.add_argument("--output", help="folder for each run's test logits and runs.json")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    settings = FAST if args.fast else SETTINGS
    if args.seeds:
        settings = dataclasses.replace(settings, seeds=tuple(range(args.seeds)))
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}")
    if args.select:
        chosen, _ = select(settings)
        print(f"chosen on validation: {chosen}")
        return
    print(f"settings: {settings}")
    if args.output:
        pathlib.Path(args.output).mkdir(parents=True, exist_ok=True)
    data = load_data(settings)
    padding = np.mean(data["test"][1] == PADDING_ID)
    print(f"vocabulary {len(data['vocabulary'])} ids; {len(data['train'][0])} training and "
          f"{len(data['test'][0])} test sequences of {settings.sequence_length}; "
          f"{padding:.1%} of test positions are padding")
    runs, rows = compare_arms(settings, data, args.output)
    print()
    print(compare.format_table(rows))
    noise = {arm: np.median([run["noise_confidence"] for run in runs[arm]]) for arm in runs}
    print(f"\nmean confidence on random tokens before training (median): no warm-up "
          f"{noise['baseline']:.3f}, warm-up {noise['warmup']:.3f} "
          f"(chance {1 / len(data['vocabulary']):.3f})")
    print("\n".join(paired_runs.verdict_lines(rows)))

if __name__ == "__main__":
    main()
