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
