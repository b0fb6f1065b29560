"""`python -m paper compare` and `reproduce` end to end on tiny data."""

import json
import subprocess

import keras
import numpy as np
import pytest
from datafiles import write_tiny_datasets

from keras_noisewarm import compare
from paper import backends
from paper import cli
from paper import run_sets
from paper import runs
from paper import toy

# 20 warm-up steps at Adam 1e-3: enough to pull the tiny MLP's confidence on
# noise down, which the test checks.
TINY_COMPARE = [
    "compare", "--train-size", "200", "--test-size", "100", "--epochs", "2",
    "--seeds", "2", "--depth", "3", "--width", "16", "--warmup-examples", "2560",
    "--warmup-learning-rate", "1e-3",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(write_tiny_datasets(tmp_path_factory.mktemp("data")))


@pytest.fixture
def tiny_quick_mode(monkeypatch):
    """`--quick` at even smaller sizes, so that every target runs in seconds."""
    monkeypatch.setattr(runs, "QUICK_SIZES", dict(
        train_size=200, test_size=100, epochs=2, width=16, warmup_examples=384))
    monkeypatch.setattr(run_sets, "QUICK_MAIN_SEEDS", (0, 1))
    monkeypatch.setattr(run_sets, "QUICK_GRID_DEPTHS", (2, 3))
    monkeypatch.setattr(run_sets, "QUICK_GRID_TRAIN_SIZES", (100, 200))
    monkeypatch.setattr(run_sets, "QUICK_GRID_SEEDS", (0, 1))
    monkeypatch.setattr(toy, "QUICK_SEEDS", (0, 1))
    monkeypatch.setattr(toy, "QUICK_STEPS", 20)
    monkeypatch.setattr(toy, "GRID_POINTS", 21)


def test_compare_writes_runs_report_and_diagrams_then_resumes(
    tmp_path, data_dir, monkeypatch, capsys
):
    arguments = TINY_COMPARE + ["--output", str(tmp_path), "--data-dir", data_dir]
    assert cli.main(arguments) == 0

    printed = capsys.readouterr().out
    for _, title, _ in runs.METRICS:
        assert title in printed
    (folder,) = (tmp_path / "runs").glob("cifar10-*")
    stored = sorted(path.name for path in folder.glob("seed*.json"))
    assert stored == [f"seed{s}_{arm}.json" for s in (0, 1) for arm in ("baseline", "warmup")]
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["key"]["epochs"] == 2 and settings["key"]["depth"] == 3
    for seed in (0, 1):
        warmed = json.loads((folder / f"seed{seed}_warmup.json").read_text())
        assert warmed["warmup_steps"] == 20
        # The warm-up pulls the confidence on noise towards chance (0.1). The
        # mean over 4,096 noise inputs has a standard error near 0.001, so a
        # fall of 0.005 is no accident (a warm-up that does nothing moves it by 0).
        assert warmed["noise_confidence_after"] < warmed["noise_confidence_before"] - 0.005
    # The printed and reported numbers are those of the stored outputs.
    report = (tmp_path / "report.md").read_text()
    for arm, column in (("baseline", 2), ("warmup", 3)):
        eces = []
        for seed in (0, 1):
            with np.load(folder / f"seed{seed}_{arm}.npz") as arrays:
                eces.append(runs.measure(arrays["validation_outputs"],
                                         arrays["validation_labels"])["ece"])
        row = next(line for line in report.splitlines() if line.startswith("| ECE (15 bins) |"))
        assert row.split("|")[column].strip().startswith(f"{np.median(eces):.4f}")
        assert f"{np.median(eces):.4f}" in printed
    backend = keras.backend.backend()
    assert f"Command: `KERAS_BACKEND={backend} python -m paper compare --train-size 200" in report
    for arm in ("baseline", "warmup"):
        assert (tmp_path / f"reliability_{arm}_seed0.png").stat().st_size > 10_000

    # A rerun finds every run finished: nothing is trained again.
    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare.RunProtocol, "run", must_not_run)
    assert cli.main(arguments) == 0
    assert (tmp_path / "report.md").read_text() == report


def test_compare_says_where_to_put_a_missing_dataset(tmp_path, data_dir):
    # The tiny data folder has CIFAR-10 but no SVHN.
    with pytest.raises(FileNotFoundError, match="SVHN not found at .*svhn"):
        cli.main(TINY_COMPARE + ["--ood", "svhn", "--data-dir", data_dir,
                                 "--output", str(tmp_path)])


def test_seeds_option_takes_a_count_or_a_list():
    parser = cli.build_parser()
    assert parser.parse_args(["compare", "--seeds", "3"]).seeds == (0, 1, 2)
    assert parser.parse_args(["compare", "--seeds", "4,7"]).seeds == (4, 7)
    with pytest.raises(SystemExit):
        parser.parse_args(["compare", "--seeds", "0"])


@pytest.mark.one_backend
def test_reproduce_all_quick_writes_every_figure_and_section_then_resumes(
    tmp_path, data_dir, tiny_quick_mode, monkeypatch
):
    arguments = ["reproduce", "all", "--quick", "--quiet", "--output", str(tmp_path),
                 "--data-dir", data_dir]
    assert cli.main(arguments) == 0
    figures = sorted(path.name for path in (tmp_path / "figures").glob("*.png"))
    for prefix in ("fig1_", "fig2_loss", "fig2_grid", "fig3_", "fig4_", "fig5_"):
        assert any(name.startswith(prefix) for name in figures), (prefix, figures)
    for name in figures:
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
    results = (tmp_path / "RESULTS.md").read_text()
    for number in range(1, 6):
        assert f"## Fig. {number} " in results
    assert (f"Command: `KERAS_BACKEND={keras.backend.backend()} python -m paper reproduce "
            "all --quick") in results
    assert "| ECE (15 bins) |" in results
    # Every figure's verdict on the paper's claim is gathered on top.
    claims = results.split("## The paper's claims at a glance")[1].split("## Fig. 1 ")[0]
    assert sum(line.startswith("- **Fig. ") for line in claims.splitlines()) == 5
    # The grid of Fig. 1 and 2 and the main comparison of Figs. 2, 4, 5 ran once.
    folders = sorted(path.name for path in (tmp_path / "runs").iterdir())
    assert sum(name.startswith("cifar10-mlp") for name in folders) == 4 + 1
    assert sum(name.startswith("warmup-") for name in folders) == 2 + 1

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare.RunProtocol, "run", must_not_run)
    assert cli.main(["reproduce", "fig2", "--quick", "--quiet", "--output", str(tmp_path),
                     "--data-dir", data_dir]) == 0
    assert "## Fig. 2 " in (tmp_path / "RESULTS.md").read_text()


@pytest.mark.one_backend
def test_reproduce_backends_runs_one_compare_per_backend_and_tables_them(
    tmp_path, data_dir, tiny_quick_mode, monkeypatch
):
    # Each backend's compare is a process of its own; here only the current
    # backend's, run in this process with the tiny quick sizes.
    backend = keras.backend.backend()
    monkeypatch.setattr(backends, "BACKENDS", (backend,))
    commands = []

    def run_in_process(command, stdout=None, env=None):
        commands.append(command)
        assert command[1:3] == ["-m", "paper"]
        return subprocess.CompletedProcess(command, cli.main(command[3:]))

    monkeypatch.setattr(backends.subprocess, "run", run_in_process)
    arguments = ["reproduce", "backends", "--quick", "--quiet", "--output", str(tmp_path),
                 "--data-dir", data_dir]
    assert cli.main(arguments) == 0

    (command,) = commands
    assert command[3:6] == ["compare", "--backend", backend]
    section = (tmp_path / "sections" / "backends.md").read_text()
    assert f"| {backend} | ECE |" in section
    assert "backend by backend: it holds on" in section
    assert (tmp_path / "backends" / backend / "report.md").is_file()
