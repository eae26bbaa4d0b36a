import numpy as np
import pytest

from vanishing_gradients.core.data import SPLITS, arrays, make_dataset, read_dataset, read_splits


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


@pytest.mark.parametrize("noise, seed, scaler_fit", [(0.1, 1, "all"), (0.2, 7, "train"), (0.05, 123, "all")])
def test_the_train_stage_reads_what_pandas_reads(params, tmp_path, noise, seed, scaler_fit):
    """read_splits (numpy alone, as train jobs read the dataset) gives bit for bit the arrays of pandas' reading,
    for the stage's CSV (17 significant digits) of several datasets; and refuses other columns, naming them."""
    params["data"].update(noise=noise, random_state=seed, scaler_fit=scaler_fit)
    path = tmp_path / "circles.csv"
    make_dataset(params["data"]).to_csv(path, index=False, float_format="%.17g")
    frame, splits = read_dataset(path), read_splits(path)
    for split in SPLITS:
        for ours, theirs in zip(splits[split], arrays(frame, split)):
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
            assert ours.tobytes() == theirs.tobytes()
    path.write_text(path.read_text().replace("split", "part", 1))
    with pytest.raises(ValueError, match="found \\['x1', 'x2', 'y', 'part'\\]"):
        read_splits(path)
