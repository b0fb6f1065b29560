"""Paired warm-up comparisons around a training function the user writes.

`keras_noisewarm.compare_warmup` trains a compiled model with `fit`. Tasks
whose training or measurement does not fit that mould (a segmentation
network with an ignore label, a language model, a regression head with a
variance) write their own `run(seed, arm)`; this module gives them the rest
of the protocol: both arms for every seed, the settings chosen on held-out
data, and a verdict in words.
"""

import itertools
import json
import pathlib

import numpy as np

from keras_noisewarm import compare

# Below this paired two-sided Wilcoxon p a majority of seeds counts. With 5
# seeds the smallest p there is, 0.0625, needs all five.
VERDICT_P_VALUE = 0.1


def run_arms(run, seeds, output=None, verbose=True):
    """Runs both arms (`compare.ARMS`) for every seed.

    Args:
        run: `run(seed, arm)` trains one network and returns `(numbers,
            arrays)`: a dict of its numbers and a dict of the arrays to keep
            (saved as `<output>/seed<seed>_<arm>.npz`).
        seeds: The seeds; both arms of a seed are a pair.
        output: A folder for the arrays and `runs.json`, or `None`.
        verbose: Print one line per run.

    Returns:
        `{arm: [numbers of each seed]}`, the `runs` of `compare.comparison_rows`.
    """
    runs = {arm: [] for arm in compare.ARMS}
    for seed in seeds:
        for arm in compare.ARMS:
            numbers, arrays = run(seed, arm)
            runs[arm].append(numbers)
            if verbose:
                print("run " + " ".join(_format_value(key, value) for key, value in numbers.items()), flush=True)
            if output is not None:
                np.savez_compressed(pathlib.Path(output) / f"seed{seed}_{arm}.npz", **arrays)
    if output is not None:
        (pathlib.Path(output) / "runs.json").write_text(json.dumps(runs, indent=1))
    return runs


def choose_on_validation(validation_values, epochs, grid, verbose=True):
    """Chooses the training length, then the warm-up, by a held-out number.

    The epochs are chosen for the model without warm-up, and the warm-up's
    settings for that length, each by the median over seeds of a number
    where lower is better (for example NLL on held-out *training* data; never
    the test split).

    Args:
        validation_values: `validation_values(changes, arm)` returns that
            number for each selection seed, for the settings changed by
            `changes` (a dict) in `arm`.
        epochs: The training lengths to choose from.
        grid: `{setting name: values}` of the warm-up; every combination is
            tried.
        verbose: Print each median.

    Returns:
        `(chosen, results)`: the chosen changes (`epochs` and the grid's
        names), and every list of values by its JSON key.

    Example:

    >>> values = lambda changes, arm: [abs(changes["epochs"] - 4) + changes.get("steps", 0)]
    >>> choose_on_validation(values, (2, 4, 8), {"steps": (10, 1)}, verbose=False)[0]
    {'epochs': 4, 'steps': 1}
    """
    results = {}

    def median(changes, arm):
        values = list(validation_values(changes, arm))
        results[json.dumps({"arm": arm, **changes})] = values
        if verbose:
            print(f"select {arm} {changes}: validation median {np.median(values):.4f}", flush=True)
        return float(np.median(values))

    chosen_epochs = min(epochs, key=lambda count: median({"epochs": count}, "baseline"))
    combinations = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    warmup = min(combinations, key=lambda item: median({"epochs": chosen_epochs, **item}, "warmup"))
    return {"epochs": chosen_epochs, **warmup}, results


def verdict(row):
    """What the warm-up did to one metric of `compare.comparison_rows`, in words.

    Returns:
        `"helped"` or `"hurt"` when most seeds moved that way and the paired
        two-sided Wilcoxon p is below `VERDICT_P_VALUE`, else `"no clear
        difference"`.

    Example:

    >>> verdict({"p_value": 0.0625, "wins": 5, "seeds": 5})
    'helped'
    >>> verdict({"p_value": 0.0625, "wins": 0, "seeds": 5})
    'hurt'
    >>> verdict({"p_value": 0.3, "wins": 4, "seeds": 5})
    'no clear difference'
    """
    if row["p_value"] < VERDICT_P_VALUE and row["wins"] > row["seeds"] / 2:
        return "helped"
    if row["p_value"] < VERDICT_P_VALUE and row["wins"] < row["seeds"] / 2:
        return "hurt"
    return "no clear difference"


def verdict_lines(rows):
    """One `verdict <metric>: ...` line per row of `compare.comparison_rows`."""
    return [f"verdict {row['metric']}: {verdict(row)} ({row['wins']}/{row['seeds']} seeds "
            f"better with warm-up, p = {row['p_value']:.3g})" for row in rows]


def _format_value(key, value):
    return f"{key}={value}" if isinstance(value, (int, str)) else f"{key}={value:.6f}"
