"""Safe YAML reading with bounded expansion: every YAML file hwnas reads (run configs,
architecture files, ingest mappings, aw_nas block tables) goes through here, so an
"alias bomb", non-UTF-8 bytes or a syntax error is one line naming the file and line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from hwnas.errors import ConfigError
from hwnas.inputs import read_text, short

#: Most YAML aliases a file may use, and most nodes it may expand to: real configs use a
#: few aliases; an "alias bomb" nests them so a 1 KB file expands to gigabytes once read.
MAX_YAML_ALIASES = 64
MAX_YAML_NODES = 200_000


def _expanded_size(node: Any, memo: dict[int, int]) -> int:
    """Nodes a composed YAML node becomes once aliases are expanded (memoised, so cheap)."""
    key = id(node)
    if key not in memo:
        memo[key] = 1  # guards recursive structures
        value = node.value if isinstance(node.value, list) else []
        memo[key] = 1 + sum(_expanded_size(c, memo) for item in value
                            for c in (item if isinstance(item, tuple) else (item,)))
    return memo[key]


def limited_loader(path: Path) -> Any:
    """A SafeLoader that refuses more than MAX_YAML_ALIASES alias uses and documents
    that would expand to more than MAX_YAML_NODES nodes."""
    import yaml

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                Loader.aliases += 1
                if Loader.aliases > MAX_YAML_ALIASES:
                    mark = self.peek_event().start_mark
                    raise ConfigError(f"{path}:{mark.line + 1}: more than {MAX_YAML_ALIASES} YAML aliases; "
                                      "refusing to expand them")
            return super().compose_node(parent, index)

        def compose_document(self) -> Any:
            node = super().compose_document()
            if Loader.aliases and node is not None and _expanded_size(node, {}) > MAX_YAML_NODES:
                raise ConfigError(f"{path}: YAML aliases expand to more than {MAX_YAML_NODES} values; "
                                  "refusing to expand them")
            return node

    return Loader


def read_yaml(path: str | Path, what: str = "config") -> Any:
    """Safe YAML of a file; unreadable files, non-UTF-8 bytes, syntax errors and alias
    bombs become one-line ConfigErrors naming the file (and line, where YAML says)."""
    import yaml

    p = Path(path)
    text = read_text(p, what)
    loader = None
    try:
        loader = limited_loader(p)(text)
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{p}{where}: not valid YAML ({short(getattr(exc, 'problem', None) or exc, 120)})") from None
    finally:
        if loader is not None:
            loader.dispose()
