"""params.yaml read the way DVC reads it, for every entry point (the CLI, the Snakefile): YAML 1.2's core schema
(`1e-3` is a number; `on`, `yes`, `no` are strings; only true and false are booleans), and a key given twice
in one mapping is an error rather than silently the last one (DVC refuses it too)."""
from __future__ import annotations

import re

import yaml

# YAML 1.2 core schema: (tag, pattern, first characters)
_CORE = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+)"
                                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
]


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's core schema and no duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice in one mapping (first on line {seen[key] + 1})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep)

    def construct_yaml_int(self, node):
        text = self.construct_scalar(node)
        return int(text[2:], 8) if text.startswith("0o") else int(text, 0 if text.startswith("0x") else 10)


Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in _CORE:
    Loader.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))
Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)


def read(text: str):
    """The document in `text`; yaml.YAMLError (with the line) when it is malformed or repeats a key."""
    return yaml.load(text, Loader=Loader)
