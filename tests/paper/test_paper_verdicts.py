"""The verdicts on the paper's claims, from known tables of runs: right, and flipped."""

import numpy as np

from paper import backends
from paper import fig1
from paper import fig2
from paper import fig4
from paper import fig5
from paper import report

SEEDS = 10


def runs_where(warmup_is_better):
    """Ten paired seeds; warm-up lowers ECE and OOD confidence, raises AUROC (or the reverse)."""
    rng = np.random.default_rng(0)
    sign = 1.0 if warmup_is_better else -1.0
    baseline, warmup = [], []
    for seed in range(SEEDS):
        base = dict(ece=0.30 + 0.01 * rng.normal(), accuracy=0.35 + 0.005 * rng.normal(),
                    nll=2.4 + 0.02 * rng.normal(), ood_auroc=0.53 + 0.01 * rng.normal(),
                    ood_confidence=0.62 + 0.01 * rng.normal())
        baseline.append(base)
        warmup.append(dict(
            ece=base["ece"] - sign * (0.06 + 0.005 * seed),
            accuracy=base["accuracy"] + 0.01,
            nll=base["nll"] - sign * 0.3,
            ood_auroc=base["ood_auroc"] + sign * (0.04 + 0.002 * seed),
            ood_confidence=base["ood_confidence"] - sign * 0.08,
        ))
    return {"baseline": baseline, "warmup": warmup}


def rows_of(results):
    return {row["metric"]: row for row in report.comparison_rows(results)}


def losses_of(results):
    return {arm: [run["nll"] for run in results[arm]] for arm in results}


def test_fig2_verdict_follows_the_direction_and_the_p_value():
    better = runs_where(warmup_is_better=True)
    text = fig2.main_verdict(rows_of(better), losses_of(better))
    assert "**reproduced**" in text and "p = 0.002" in text
    worse = runs_where(warmup_is_better=False)
    text = fig2.main_verdict(rows_of(worse), losses_of(worse))
    assert "**not reproduced**" in text
    # A gain that is not significant is not reproduced either.
    three = {arm: runs[:3] for arm, runs in better.items()}
    assert "**not reproduced**" in fig2.main_verdict(rows_of(three), losses_of(three))


def test_fig2_verdict_refuses_a_gain_bought_with_accuracy():
    results = runs_where(warmup_is_better=True)
    for run in results["warmup"]:
        run["accuracy"] -= 0.03
    assert "**not reproduced**" in fig2.main_verdict(rows_of(results), losses_of(results))


def test_fig5_verdict_follows_the_direction_and_the_p_value():
    assert "**reproduced**" in fig5.verdict(rows_of(runs_where(True)), "mnist")
    assert "**not reproduced**" in fig5.verdict(rows_of(runs_where(False)), "mnist")


def test_fig1_verdict_counts_significant_trends_of_the_right_sign():
    text = fig1.verdict([(0.97, 1e-9), (0.5, 0.2), (-0.9, 1e-4)], [(-0.9, 1e-3), (0.95, 1e-4)])
    assert "grows significantly with depth (ρ > 0, p < 0.01) at 1 of 3 data sizes" in text
    assert "falls significantly with data size at 1 of 2 depths" in text


def test_fig2_grid_verdict_counts_improved_cells():
    cells = {}
    for depth in (2, 4):
        for size in (100, 200):
            reductions = np.array([0.02, 0.03, 0.01]) * (1 if depth == 4 else -1)
            cells[depth, size] = {"reductions": reductions, "reduction": float(np.median(reductions))}
    text = fig2.grid_verdict(cells, (2, 4), (100, 200))
    assert text.startswith("Warm-up lowered the median ECE in 2 of 4 cells, and in 6 of 12 networks")


def test_fig4_verdict_counts_epochs_and_levels_where_warmup_is_lower():
    curves = {
        "baseline": [{"ece": [0.5, 0.30, 0.32, 0.33]}] * 3,
        "warmup": [{"ece": [0.5, 0.25, 0.34, 0.30]}] * 3,
    }
    matched = {"baseline": np.array([[0.3, 0.2]] * 3), "warmup": np.array([[0.2, 0.3]] * 3)}
    text = fig4.verdict(curves, matched, levels=[0.2, 0.3], last_epoch=3)
    assert "at 2 of 3 epochs and at 1 of 2 matched accuracy levels" in text


def test_backends_verdict_counts_backends_where_the_claim_holds(monkeypatch):
    monkeypatch.setattr(backends, "BACKENDS", ("tensorflow", "jax", "torch"))
    results = {"tensorflow": runs_where(True), "jax": runs_where(True), "torch": runs_where(False)}
    assert "it holds on 2 of 3 backends (10 seeds each)" in backends.verdict(results, SEEDS)


def test_results_gather_every_sections_verdicts_on_top(tmp_path):
    import types

    from paper import reproduce

    sections = tmp_path / "sections"
    sections.mkdir()
    (sections / "fig1.md").write_text(
        "## Fig. 1 title\n\nCommand: `python -m paper reproduce fig1`\n\n"
        "Paper's claim (A): holds.\n\nbody\n")
    (sections / "tasks.md").write_text(
        "## Tasks title\n\nPaper's claim (B): does not hold.\nPaper's claim (C): holds.\n")
    (sections / "fig3.md").write_text("## Fig. 3 title\n\nno verdict here\n")
    text = reproduce.write_results(types.SimpleNamespace(output=str(tmp_path), quick=False)).read_text()
    top = text[:text.index("## Fig. 1 title")]
    assert top.splitlines().count("## The paper's claims at a glance") == 1
    claims = [line for line in top.splitlines() if line.startswith("- **")]
    # In the order of reproduce.TARGETS (fig1 before tasks), every verdict once.
    assert claims == ["- **Fig. 1 title**: Paper's claim (A): holds.",
                      "- **Tasks title**: Paper's claim (B): does not hold.",
                      "- **Tasks title**: Paper's claim (C): holds."]
    # Every section follows in full, Fig. 3 included.
    assert "no verdict here" in text and text.count("body") == 1
