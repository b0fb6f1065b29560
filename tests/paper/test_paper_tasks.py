"""`python -m paper reproduce tasks --quick`: the three task examples' fast
comparisons, their section, figure and cache."""

import json

import pytest

from keras_noisewarm import compare
from keras_noisewarm import statistics
from paper import context as context_lib
from paper import reproduce
from paper import tasks


@pytest.fixture
def quick_context(tmp_path):
    return context_lib.Context(output=tmp_path / "docs", cache=tmp_path / "cache", quick=True,
                               command="python -m paper reproduce tasks --quick", verbose=0)


@pytest.mark.one_backend
def test_quick_reproduction_writes_the_measured_tables_and_reuses_its_runs(quick_context, monkeypatch):
    results = reproduce.reproduce(["tasks"], quick_context)
    section = (quick_context.output / "sections" / "tasks.md").read_text()
    assert section in results.read_text()
    for name, (filename, title, claim) in tasks.EXAMPLES.items():
        example = tasks.load_example(name)
        assert f"### {title}" in section and f"`python examples/{filename}`" in section
        # The table holds the medians of the cached runs.
        folder = next((quick_context.cache / "tasks").glob(f"{name}-v*"))
        seeds = example.FAST.seeds
        for metric, metric_title, _ in example.METRICS:
            values = {arm: [json.loads((folder / f"seed{seed}_{arm}.json").read_text())[metric]
                            for seed in seeds] for arm in compare.ARMS}
            row = next(line for line in section.splitlines() if line.startswith(f"| {metric_title} |"))
            assert f"| {statistics.summarize(values['baseline'])} | " \
                   f"{statistics.summarize(values['warmup'])} |" in row
        if claim is not None:
            assert f"Paper's claim ({claim}): **" in section
    assert "Not a claim of the paper" in section
    assert "## The paper's claims at a glance" in results.read_text()
    assert (quick_context.output / "figures" / tasks.FIGURE).stat().st_size > 20_000

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    for name in tasks.EXAMPLES:
        monkeypatch.setattr(tasks.load_example(name), "run", must_not_train)
    reproduce.reproduce(["tasks"], quick_context)
    rerun = (quick_context.output / "sections" / "tasks.md").read_text()
    assert rerun.split("\n_tasks:")[0] == section.split("\n_tasks:")[0]


def test_tasks_is_a_target_but_not_part_of_all():
    assert reproduce.TARGETS["tasks"] == "tasks"
    assert "tasks" not in reproduce.ALL
