"""The event files are real TensorBoard files and the extraction reads back exactly what was written."""
import numpy as np
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.histogram.summary_v2 import histogram_pb
from tensorboard.util import tensor_util

from vanishing_gradients.record.events import EventWriter, read_events, tensorboard_buckets


def test_scalars_and_histograms_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    grads = {step: rng.normal(size=(5, 5)).astype(np.float32) for step in (0, 1, 2)}
    writer = EventWriter(tmp_path)
    for step, values in grads.items():
        writer.scalars({"loss_train": 0.5 + step, "grad_val_mean_abs/hidden_1": np.abs(values).mean()}, step)
        counts, (low, high) = tensorboard_buckets(values)
        writer.histogram_counts("grad_val/hidden_1", low, high, counts, step)
    writer.histogram_counts("grad_val/hidden_2", np.nan, 1.0, np.ones(30), 0)  # a diverged model: skipped
    writer.close()

    scalars, histograms = read_events(tmp_path)
    loss = scalars[scalars["statistic"] == "loss_train"]
    assert list(loss["layer"]) == ["model"] * 3 and list(loss["epoch"]) == [0, 1, 2]
    np.testing.assert_allclose(loss["value"], [0.5, 1.5, 2.5], rtol=1e-7)  # stored as float32
    grad = scalars[scalars["statistic"] == "grad_val_mean_abs"]
    np.testing.assert_allclose(grad["value"], [np.abs(v).mean() for v in grads.values()], rtol=1e-6)
    assert set(histograms["layer"]) == {"hidden_1"}
    for step, values in grads.items():
        # the same buckets as tensorboard's own histogram summary of these values
        expected = tensor_util.make_ndarray(histogram_pb("x", values.ravel(), buckets=30).value[0].tensor)
        got = histograms[histograms["epoch"] == step][["bin_left", "bin_right", "count"]].to_numpy()
        np.testing.assert_allclose(got, expected, atol=1e-6)  # edges from float32 ranges
        np.testing.assert_array_equal(got[:, 2], expected[:, 2])
        assert got[:, 2].sum() == values.size


def test_tensorboard_reads_what_we_write(tmp_path):
    """TensorBoard's own reader sees the scalar and histogram plugins, with metadata written once per tag."""
    writer = EventWriter(tmp_path)
    for step in range(3):
        writer.scalars({"accuracy_test": 0.5, "loss_test/output": 0.25}, step)
        writer.histogram_counts("kernel/output", -1.0, 1.0, np.arange(30), step)
    writer.close()
    acc = ea.EventAccumulator(str(tmp_path), size_guidance={ea.TENSORS: 0})
    acc.Reload()
    assert acc.SummaryMetadata("accuracy_test").plugin_data.plugin_name == "scalars"
    assert [e.step for e in acc.Tensors("loss_test/output")] == [0, 1, 2]  # a step's scalars share one record
    assert acc.SummaryMetadata("kernel/output").plugin_data.plugin_name == "histograms"
    assert [e.step for e in acc.Tensors("kernel/output")] == [0, 1, 2]
    assert tensor_util.make_ndarray(acc.Tensors("kernel/output")[2].tensor_proto).shape == (30, 3)


def test_records_carry_tensorboards_own_checksums(tmp_path):
    """Records are checksummed in C (google-crc32c): the same CRC-32C as tensorboard's pure-Python one, so a file
    we write passes its reader's check with the pure-Python checksum restored."""
    import os
    import struct

    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow

    pure = pywrap_tensorflow.crc_update
    for data in (b"", b"a", os.urandom(1000), os.urandom(4097)):
        assert pywrap_tensorflow.crc32c(data) == pywrap_tensorflow.crc_finalize(pure(0, data))
    writer = EventWriter(tmp_path)
    writer.scalars({"loss_train": 0.5, "kernel_l1/hidden_1": 2.0}, 1)
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    raw, records = path.read_bytes(), 0
    while raw:  # every record: length, its masked CRC, data, the data's masked CRC
        (length,), (length_crc,) = struct.unpack("<Q", raw[:8]), struct.unpack("<I", raw[8:12])
        data, (data_crc,) = raw[12:12 + length], struct.unpack("<I", raw[12 + length:16 + length])
        mask = lambda crc: (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF  # TFRecord's masking
        assert length_crc == mask(pywrap_tensorflow.crc_finalize(pure(0, raw[:8])))
        assert data_crc == mask(pywrap_tensorflow.crc_finalize(pure(0, data)))
        raw, records = raw[16 + length:], records + 1
    assert records == 2  # the file's version and the step's scalars
