"""The reference engine: its additions leave model.fit unchanged, and its gradient statistics are right."""
import dataclasses

import numpy as np
import pytest

from vanishing_gradients.train.keras import (GradientRecorder, epoch_orders, fit, keras, recording_optimizer, tf,
                                              train_one, validation_gradients)
from vanishing_gradients.core.models import ModelSpec
from vanishing_gradients.train.keras import build_keras_model, keras_optimizer

TINY = ModelSpec(depth=2, width=3, activation="tanh", hidden_init="glorot_uniform", output_init="glorot_uniform")


def _fit(spec, optimizer, data, record, epochs=3):
    keras.utils.set_random_seed(11)
    model = build_keras_model(spec)
    opt = recording_optimizer(optimizer, GradientRecorder(model)) if record else keras_optimizer(optimizer)
    model.compile(optimizer=opt, loss=keras.losses.BinaryCrossentropy(), metrics=["accuracy"])
    x, y = data["train"]
    history = model.fit(x, y, batch_size=32, epochs=epochs, verbose=0, validation_data=data["test"])
    return [w.numpy() for w in model.weights], history.history


@pytest.mark.parametrize("optimizer", [{"name": "sgd", "learning_rate": 0.01, "momentum": 0.9},
                                       {"name": "adam", "learning_rate": 0.01}])
def test_recording_optimizer_does_not_change_training(data, optimizer):
    stock_weights, stock_history = _fit(TINY, optimizer, data, record=False)
    weights, history = _fit(TINY, optimizer, data, record=True)
    for a, b in zip(stock_weights, weights):
        np.testing.assert_array_equal(a, b)
    assert history == stock_history


def test_reference_trains_on_a_fresh_order_of_the_rows_every_epoch(data):
    """`fit` visits the rows in epoch_orders(seed), a new permutation each epoch (seeded Keras 3 model.fit with
    shuffle=True would repeat one): the same as model.fit one epoch at a time on the rows in those orders."""
    orders = epoch_orders(5, 3, len(data["train"][0]))  # (epochs, n)
    assert all(sorted(o) == list(range(orders.shape[1])) for o in orders)
    assert len({tuple(o) for o in orders}) == 3
    models, histories = [], []
    for by_epoch in (False, True):
        keras.utils.set_random_seed(11)
        model = build_keras_model(TINY)
        model.compile(optimizer=keras_optimizer({"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}),
                      loss=keras.losses.BinaryCrossentropy(), metrics=["accuracy"])
        if by_epoch:
            x, y = data["train"]
            fits = [model.fit(x[o], y[o], batch_size=32, epochs=1, shuffle=False, validation_data=data["test"],
                              verbose=0) for o in orders]
            histories.append({k: [h.history[k][0] for h in fits] for k in fits[0].history})
        else:
            history = keras.callbacks.History()
            fit(model, data, {"epochs": 3, "batch_size": 32}, 5, callbacks=[history])
            histories.append(history.history)
        models.append([w.numpy() for w in model.weights])
    for a, b in zip(*models):
        np.testing.assert_array_equal(a, b)
    assert histories[0] == histories[1]


def _independent_grads(weights, x, y):
    """d mean(BCE-with-logits) / d kernels, by hand with GradientTape: no Keras layers or losses."""
    variables = [tf.Variable(w) for w in weights]  # kernel, bias, kernel, bias, ...
    with tf.GradientTape() as tape:
        h = tf.constant(x)
        for i in range(0, len(variables) - 2, 2):
            h = tf.tanh(h @ variables[i] + variables[i + 1])
        logits = h @ variables[-2] + variables[-1]
        loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.constant(y), logits=logits))
    return [g.numpy() for g in tape.gradient(loss, variables[::2])]


def test_validation_gradients_match_independent_tape(data):
    keras.utils.set_random_seed(5)
    model = build_keras_model(TINY)
    model.compile(optimizer="sgd", loss=keras.losses.BinaryCrossentropy())
    x, y = data["test"]
    per_batch = validation_gradients(model, x, y, batch_size=32)()
    weights = [w.numpy() for w in model.weights]
    assert len(per_batch) == 16  # 15 batches of 32 and one of 20
    for b, grads in enumerate(per_batch):
        expected = _independent_grads(weights, x[32 * b:32 * (b + 1)], y[32 * b:32 * (b + 1)])
        for got, want in zip(grads, expected):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_statistics_equal_independent_gradients(data, params):
    """Epoch 0 validation statistics, and epoch 1's training-step mean with one full-batch step."""
    train = {**params["train"], "epochs": 1, "batch_size": 500}
    optimizer = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}
    keras.utils.set_random_seed(1)
    init = [w.numpy() for w in build_keras_model(TINY).weights]
    out = train_one(TINY, optimizer, train, {"stats_freq": 1, "histogram_freq": 1}, data, seed=1, detail=True)
    stats = out["layer_stats"]  # (epochs 0 and 1, statistics, layers)
    x_val, y_val = data["test"]
    val_grads = _independent_grads(init, x_val, y_val)  # one validation batch of 500
    train_grads = _independent_grads(init, *data["train"])  # the single training step's gradient
    for i, (g_val, g_train) in enumerate(zip(val_grads, train_grads)):
        np.testing.assert_allclose(stats[0, 0, i], np.abs(g_val).mean(), rtol=1e-5)  # grad_val_mean_abs
        np.testing.assert_allclose(stats[1, 1, i], np.abs(g_train).mean(), rtol=1e-5)  # grad_train_mean_abs
        assert out["hist_counts"][0, i, 0].sum() == g_val.size
        moved = np.linalg.norm(0.01 * g_train) / np.linalg.norm(init[2 * i])  # one SGD step: momentum not yet in play
        np.testing.assert_allclose(stats[1, 3, i], moved, rtol=1e-4)  # update_ratio
    np.testing.assert_allclose(stats[0, 2, 0], np.abs(init[0]).sum(), rtol=1e-6)  # kernel_l1
    assert np.isnan(stats[0, 1]).all() and np.isnan(stats[0, 3]).all()  # no training step before epoch 1
    hidden = np.tanh(x_val @ init[0] + init[1])
    np.testing.assert_allclose(stats[0, 4, 0], np.mean(np.abs(hidden) > 0.99), atol=1e-6)  # saturated_share
    assert np.isnan(stats[0, 4, -1])  # not defined for the output layer
    assert out["final"][3] == pytest.approx(out["history"][0, 3], abs=1e-6)  # evaluate() = last validation


def test_diverging_model_is_recorded_not_raised(data, params):
    from vanishing_gradients.record.runs import diverged
    train = {**params["train"], "epochs": 2}
    spec = dataclasses.replace(TINY, activation="relu")  # unbounded: an absurd step overflows to inf, then NaN
    out = train_one(spec, {"name": "sgd", "learning_rate": 1e30, "momentum": 0.9}, train,
                    {"stats_freq": 1, "histogram_freq": 1}, data, 1, detail=False)
    assert diverged(out["history"][..., None], out["final"][:, None])[0]
    assert np.isnan(out["history"]).any()
