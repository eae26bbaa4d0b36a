"""A study expanded into variants: every config x depth x width of params.yaml's `studies.<name>`.

A variant is one model shape and configuration, trained once per seed. Both engines, the
extraction and the statistics walk studies through this one expansion.
"""
from __future__ import annotations

from dataclasses import dataclass

from .models import ModelSpec


@dataclass(frozen=True)
class Variant:
    study: str
    config: str
    spec: ModelSpec
    optimizer: dict  # the config's optimizer, else train.optimizer
    seeds: tuple[int, ...]

    @property
    def name(self) -> str:
        """Folder and table key: `tanh_uniform-d05-w05` (zero-padded so names sort by depth)."""
        return f"{self.config}-d{self.spec.depth:02d}-w{self.spec.width:02d}"

    @property
    def depth(self) -> int:
        return self.spec.depth

    @property
    def width(self) -> int:
        return self.spec.width


def seed_list(seeds: int | list[int]) -> tuple[int, ...]:
    """params' seeds: a count N means seeds 1..N."""
    return tuple(range(1, seeds + 1)) if isinstance(seeds, int) else tuple(seeds)


def depth_list(depths: list[int] | dict) -> list[int]:
    if isinstance(depths, dict):
        return list(range(depths["from"], depths["to"] + 1, depths.get("step", 1)))
    return list(depths)


def variants(params: dict, study: str) -> list[Variant]:
    """Every variant of `study`, in params order (config, then width, then depth)."""
    entry = params["studies"][study]
    seeds = seed_list(entry.get("seeds", params["train"]["seeds"]))
    out = []
    for config_name in entry["configs"]:
        config = params["configs"][config_name]
        optimizer = config.get("optimizer", params["train"]["optimizer"])
        for width in entry["widths"]:
            for depth in depth_list(entry["depths"]):
                spec = ModelSpec(depth=depth, width=width, activation=config["activation"],
                                 hidden_init=config["hidden_init"], output_init=config["output_init"])
                out.append(Variant(study, config_name, spec, optimizer, seeds))
    return out


def shape_key(variant: Variant) -> tuple:
    """Variants with equal keys can train in one program of the fast engine: same width, activation and optimiser
    kind (core/cost.py's programs groups them by depth)."""
    opt = variant.optimizer
    return variant.width, variant.spec.activation, opt["name"], opt.get("nesterov", False)


def n_models(params: dict) -> int:
    return sum(len(v.seeds) for study in params["studies"] for v in variants(params, study))
