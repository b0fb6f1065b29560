"""The main job: the same networks trained with and without noise warm-up.

For every seed, one network is built from that seed and trained in both
arms from the same initial weights (`keras_noisewarm.compare_warmup`, through
`runs`); the comparison then summarises every metric over seeds and tests the
paired differences.
"""

import pathlib

from keras_noisewarm import plot
from paper import runs


def run_comparison(spec, seeds, store, data_dir=None, verbose=1):
    """Runs (or resumes) both arms of every seed.

    Args:
        spec: A `runs.RunSpec`.
        seeds: The seeds.
        store: A `runs.RunStore`.
        data_dir: Folder of local dataset copies.
        verbose: 1 for a progress bar over the runs still to do.

    Returns:
        A dict `{arm: [result of each seed]}`, seeds in the order given.
    """
    jobs = [(spec, seed, arm) for seed in seeds for arm in runs.ARMS]
    results = runs.run_all(store, jobs, data_dir=data_dir, verbose=verbose)
    return {arm: [r for r in results if r["arm"] == arm] for arm in runs.ARMS}


def save_reliability_diagrams(store, spec, seed, folder, prefix="reliability"):
    """One reliability diagram per arm of `seed`, drawn from its stored logits.

    Returns:
        The file names written, `{arm: name}`.
    """
    names = {}
    for arm in runs.ARMS:
        arrays = store.load_arrays(spec, seed, arm)
        figure = plot.reliability_diagram(
            arrays["test_labels"], arrays["test_logits"], num_bins=runs.NUM_BINS,
            from_logits=True, title=f"{runs.ARM_TITLES[arm]} (seed {seed})",
        )
        names[arm] = f"{prefix}_{arm}_seed{seed}.png"
        plot.save_figure(figure, pathlib.Path(folder) / names[arm])
    return names
