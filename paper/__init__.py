"""The reproduction of Cheon & Paik (2026): experiments, runs, statistics, figures.

Run from the checkout with `python -m paper compare | reproduce`. It imports
the library, `keras_noisewarm`; the library never imports it. It alone knows
where our offline machines keep their datasets (`paper.data.local_data_dir`).
"""
