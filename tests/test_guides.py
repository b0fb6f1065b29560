"""Every guide in guides/ runs, in its fast mode, as a test on each backend."""

import pathlib
import runpy

import pytest

GUIDES = sorted((pathlib.Path(__file__).parent.parent / "guides").glob("*.py"))


def test_there_are_guides():
    assert GUIDES, "guides/ holds no guide"


@pytest.mark.parametrize("guide", GUIDES, ids=[path.stem for path in GUIDES])
def test_guide_runs_in_fast_mode(guide, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_NOISEWARM_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(guide), run_name="__main__")
