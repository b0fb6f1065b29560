"""Every `>>>` example in the library's docstrings runs, and prints what it says."""

import doctest
import importlib
import pkgutil

import keras
import numpy as np
import pytest

import keras_noisewarm

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(keras_noisewarm.__path__, "keras_noisewarm.")
    if not name.endswith("__main__")
)


def examples_of(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [test for test in finder.find(module) if test.examples and test.name.startswith(module.__name__)]


def test_there_are_many_examples():
    count = sum(len(test.examples) for name in MODULES for test in examples_of(importlib.import_module(name)))
    assert count > 150, count


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in examples_of(module):
        test.globs = dict(module.__dict__, keras=keras, np=np)
        keras.utils.set_random_seed(1234)
        result = runner.run(test, out=lambda text: failures.append(text))
        assert result.failed == 0, "".join(failures)


failures = []
