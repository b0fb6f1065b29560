"""Fig. 3's toy model: noise warm-up pulls a 2-D classifier's confidence to chance."""

import numpy as np

from paper import toy


def test_grid_covers_the_square_row_by_row():
    points = toy.grid_points()
    assert points.shape == (toy.GRID_POINTS**2, 2)
    np.testing.assert_array_equal(points[0], [-toy.LIMIT, -toy.LIMIT])
    np.testing.assert_array_equal(points[-1], [toy.LIMIT, toy.LIMIT])
    assert points[1, 0] > points[0, 0] and points[1, 1] == points[0, 1]


def test_warmup_lowers_confidence_where_its_noise_lies():
    summary = toy.summarize_seed(toy.run_seed(seed=0, steps=300))
    before, gaussian, square = (summary[name] for name in ("before", "gaussian", "square"))
    # Measured for seed 0 (TF / JAX / torch): over the square 0.968 / 0.997 /
    # 0.954 untrained, 0.544 / 0.558 / 0.561 after noise over the square;
    # within radius 2 0.826 / 0.922 / 0.793 untrained, 0.571 / 0.586 / 0.619
    # after N(0, 1) noise.
    assert before["mean_confidence"] > 0.9
    assert square["mean_confidence"] < 0.6
    assert gaussian["centre_confidence"] < before["centre_confidence"] - 0.15
    # N(0, 1) noise never reaches the corners of the square.
    assert gaussian["mean_confidence"] > square["mean_confidence"] + 0.2
    # The untrained class bias depends on the seed (0.185 / 0.5 / 0.01); after
    # noise over the square it measured 0.110 / 0.146 / 0.064.
    assert square["class_bias"] < 0.2


def test_summary_reads_confidence_and_class_bias_off_the_logits():
    count = toy.GRID_POINTS**2
    # Class 0 everywhere with probability sigmoid(2) = 0.881.
    logits = np.zeros((count, 2), "float32")
    logits[:, 0] = 2.0
    summary = toy.summarize_seed({"before": logits})["before"]
    assert abs(summary["mean_confidence"] - 1 / (1 + np.exp(-2.0))) < 1e-6
    assert summary["class_bias"] == 0.5
