import numpy as np

from vanishing_gradients.core.data import arrays, make_dataset


def test_deterministic_and_scaled(params):
    a, b = make_dataset(params["data"]), make_dataset(params["data"])
    assert a.equals(b)
    x = a[["x1", "x2"]].to_numpy()
    # fitted on all rows: each feature spans exactly [-1, 1]
    np.testing.assert_allclose(x.min(axis=0), [-1, -1], atol=1e-12)
    np.testing.assert_allclose(x.max(axis=0), [1, 1], atol=1e-12)
    assert list(a["split"].iloc[[0, 499, 500, 999]]) == ["train", "train", "test", "test"]
    assert set(a["y"]) == {0, 1} and len(a) == 1000


def test_train_only_scaler_leaves_test_rows_unclamped(params):
    params["data"]["scaler_fit"] = "train"
    frame = make_dataset(params["data"])
    x_train, y_train = arrays(frame, "train")
    assert x_train.shape == (500, 2) and y_train.shape == (500, 1)
    np.testing.assert_allclose(x_train.min(axis=0), [-1, -1], atol=1e-6)
    np.testing.assert_allclose(x_train.max(axis=0), [1, 1], atol=1e-6)
