"""The two sets of runs behind the paper's CIFAR-10 figures.

- The *main comparison* (Figs. 2, 4 and 5): the six-layer MLP on 4,000
  CIFAR-10 images, both arms, ten seeds, with the test set measured after
  every epoch.
- The *depth x data-size grid* (Figs. 1 and 2): MLPs of 2 to 10 layers on
  1,000 to 4,000 images, both arms, three seeds (its depth-6, 4,000-image
  cell shares its runs with the main comparison).

Both are shared: a target that needs them trains only the runs that no
earlier target (or `python -m paper compare`) has left in the cache.
"""

import dataclasses

from paper import runs

MAIN_SEEDS = tuple(range(10))
GRID_DEPTHS = (2, 4, 6, 8, 10)
GRID_TRAIN_SIZES = (1000, 2000, 4000)
GRID_SEEDS = (0, 1, 2)

QUICK_MAIN_SEEDS = (0, 1, 2)
QUICK_GRID_DEPTHS = (2, 4)
QUICK_GRID_TRAIN_SIZES = (250, 500)
QUICK_GRID_SEEDS = (0, 1)


def main_spec(context):
    """The setting of the main comparison."""
    spec = runs.RunSpec(ood=context.ood)
    return dataclasses.replace(spec, **runs.QUICK_SIZES) if context.quick else spec


def main_seeds(context):
    return context.seeds_or(QUICK_MAIN_SEEDS if context.quick else MAIN_SEEDS)


def main_results(context):
    """Runs (or loads) the main comparison: `{arm: [result per seed]}`."""
    from paper import compare

    return compare.run_comparison(
        main_spec(context), main_seeds(context), runs.RunStore(context.cache),
        data_dir=context.data_dir, verbose=context.verbose,
    )


def grid_axes(context):
    """`(depths, train_sizes, seeds)` of the grid."""
    if context.quick:
        return QUICK_GRID_DEPTHS, QUICK_GRID_TRAIN_SIZES, context.seeds_or(QUICK_GRID_SEEDS)
    return GRID_DEPTHS, GRID_TRAIN_SIZES, context.seeds_or(GRID_SEEDS)


def grid_spec(context, depth, train_size):
    """The setting of one grid cell.

    Cells are measured at the end of training only, except the cell of the
    main comparison, which *is* the main comparison (per-epoch measurements
    do not change training), so its runs are shared.
    """
    main = main_spec(context)
    is_main = (depth, train_size) == (main.depth, main.train_size)
    return dataclasses.replace(main, depth=depth, train_size=train_size, track_epochs=is_main)


def grid_results(context, arms=runs.ARMS):
    """Runs (or loads) the grid.

    Returns:
        `{(depth, train_size): {arm: [result per seed]}}`.
    """
    depths, sizes, seeds = grid_axes(context)
    # Depth-major order: all sizes of a network follow its warm-up, which
    # they share.
    jobs = [
        (grid_spec(context, depth, size), seed, arm)
        for depth in depths for seed in seeds for arm in arms for size in sizes
    ]
    results = runs.run_all(
        runs.RunStore(context.cache), jobs, data_dir=context.data_dir,
        verbose=context.verbose,
    )
    grid = {(depth, size): {arm: [] for arm in arms} for depth in depths for size in sizes}
    for (spec, _, arm), result in zip(jobs, results):
        grid[spec.depth, spec.train_size][arm].append(result)
    return grid
