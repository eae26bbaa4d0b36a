"""The event files are real TensorBoard files and the extraction reads back exactly what was written."""
import numpy as np
from tensorboard.plugins.histogram.summary_v2 import histogram_pb
from tensorboard.util import tensor_util

from vanishing_gradients.events import EventWriter, read_events


def test_scalars_and_histograms_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    grads = {step: rng.normal(size=(5, 5)) for step in (0, 1, 2)}
    writer = EventWriter(tmp_path)
    for step, values in grads.items():
        writer.scalar("loss_train", 0.5 + step, step)
        writer.scalar("grad_val_mean_abs/hidden_1", np.abs(values).mean(), step)
        writer.histogram("grad_val/hidden_1", values, step)
    writer.histogram("grad_val/hidden_2", np.array([np.nan, 1.0]), 0)  # a diverged model: skipped
    writer.close()

    scalars, histograms = read_events(tmp_path)
    loss = scalars[scalars["statistic"] == "loss_train"]
    assert list(loss["layer"]) == ["model"] * 3 and list(loss["epoch"]) == [0, 1, 2]
    np.testing.assert_allclose(loss["value"], [0.5, 1.5, 2.5], rtol=1e-7)  # stored as float32
    grad = scalars[scalars["statistic"] == "grad_val_mean_abs"]
    np.testing.assert_allclose(grad["value"], [np.abs(v).mean() for v in grads.values()], rtol=1e-6)
    assert set(histograms["layer"]) == {"hidden_1"}
    for step, values in grads.items():
        expected = tensor_util.make_ndarray(histogram_pb("x", values.ravel(), buckets=30).value[0].tensor)
        got = histograms[histograms["epoch"] == step][["bin_left", "bin_right", "count"]].to_numpy()
        np.testing.assert_array_equal(got, expected)
        assert got[:, 2].sum() == values.size
