"""The MLPs of the study, defined once as a spec that every engine builds from."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """Input 2 -> `depth` hidden Dense(width, activation) -> Dense(1, sigmoid); biases start at zero."""

    depth: int
    width: int
    activation: str
    hidden_init: str | dict
    output_init: str | dict
    n_inputs: int = 2

    @property
    def layer_names(self) -> list[str]:
        return [f"hidden_{i}" for i in range(1, self.depth + 1)] + ["output"]

    @property
    def kernel_shapes(self) -> list[tuple[int, int]]:
        """(fan_in, fan_out) of every kernel, input to output."""
        sizes = [self.n_inputs] + [self.width] * self.depth + [1]
        return list(zip(sizes[:-1], sizes[1:]))


def keras_initializer(init: str | dict):
    import keras

    if isinstance(init, str):
        return keras.initializers.get(init)
    return keras.initializers.RandomUniform(minval=init["minval"], maxval=init["maxval"])


def build_keras_model(spec: ModelSpec):
    """An uncompiled keras.Sequential; draw the weights after keras.utils.set_random_seed."""
    import keras

    layers = [keras.Input(shape=(spec.n_inputs,))]
    for name in spec.layer_names[:-1]:
        layers.append(keras.layers.Dense(spec.width, activation=spec.activation, name=name,
                                         kernel_initializer=keras_initializer(spec.hidden_init),
                                         bias_initializer="zeros"))
    layers.append(keras.layers.Dense(1, activation="sigmoid", name="output",
                                     kernel_initializer=keras_initializer(spec.output_init),
                                     bias_initializer="zeros"))
    return keras.Sequential(layers, name="mlp")


def keras_optimizer(settings: dict):
    import keras

    kwargs = {k: v for k, v in settings.items() if k != "name"}
    return {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[settings["name"]](**kwargs)
