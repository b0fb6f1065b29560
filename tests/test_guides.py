"""Every guide in guides/ runs, in its fast mode, as a test on each backend,
and the numbers it prints hold what the guide says of them."""

import pathlib
import runpy

import numpy as np
import pytest

GUIDES = sorted((pathlib.Path(__file__).parent.parent / "guides").glob("*.py"))


def check_noise_warmup(names):
    before, after = names["before"], names["after"]
    # The warm-up removes the untrained class bias on noise and lowers the
    # confidence there; its loss starts near ln K for K random labels.
    assert after.max_class_frequency < before.max_class_frequency
    assert after.mean_confidence < before.mean_confidence
    assert names["history"].history["loss"][0] > 0.5 * np.log(names["NUM_CLASSES"])
    assert names["resnet_recipe"].num_steps() == -(-names["resnet_recipe"].num_examples // 256)


def check_measuring_calibration(names):
    # Streaming in batches gives the ECE of the whole set.
    assert float(names["streamed"].result()) == pytest.approx(float(names["whole"].result()), abs=1e-6)
    assert 0.0 <= float(names["whole"].result()) <= 1.0


def check_serving_calibrated_models(names):
    assert names["gap"] < 1e-5
    assert names["request_matches"] is True
    # The conformal sets keep (about) their coverage on in-distribution digits.
    assert names["coverage"] >= 1 - names["ALPHA_SETS"] - 0.1
    assert 0.0 <= names["flagged_digits"] <= 1.0 and 0.0 <= names["flagged_clothes"] <= 1.0


def check_feedback_alignment(names):
    assert names["same"]  # the conversion keeps the forward outputs
    assert set(names["histories"]) >= {"backprop", "FA"}


def check_calibration_callbacks(names):
    for history in (names["plain"], names["warmed"]):
        for key in ("val_ece", "val_nll", "val_accuracy", "val_ood_confidence", "val_ood_auroc"):
            values = np.asarray(history[key])
            assert len(values) == names["EPOCHS"] and np.all(np.isfinite(values)), key
        assert np.all((0 <= np.asarray(history["val_ece"])) & (np.asarray(history["val_ece"]) <= 1))


def check_detecting_unknown_inputs(names):
    for pairing, results in names["all_results"].items():
        assert len(results["plain"]) == len(results["warm-up"]) == len(names["SEEDS"]), pairing


CHECKS = {name[len("check_"):]: check for name, check in globals().items() if name.startswith("check_")}


def test_there_are_guides():
    assert GUIDES, "guides/ holds no guide"


def test_every_guide_has_its_checks():
    assert sorted(CHECKS) == sorted(path.stem for path in GUIDES)


@pytest.mark.parametrize("guide", GUIDES, ids=[path.stem for path in GUIDES])
def test_guide_runs_in_fast_mode(guide, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_NOISEWARM_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    names = runpy.run_path(str(guide), run_name="__main__")
    CHECKS[guide.stem](names)
