"""The paper's experiments: data, models, runs, statistics and reports.

Used by the command line (`keras-noisewarm compare`); the library itself
never imports this package.
"""
