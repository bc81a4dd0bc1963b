"""An experiment configuration given as a dict, written as TOML text.

``tomli_w`` writes it when it is installed; otherwise :func:`dumps` below,
which covers what a configuration holds: tables of strings, numbers,
booleans and lists of them (paths as strings or ``os.PathLike``). The text
is then parsed by the library like a configuration file, so unknown keys
and bad values get the same errors (``ConfigError``).
"""

import json
import math
import os

from .errors import _invalid


def _value(v, where):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, (str, os.PathLike)):
        return json.dumps(os.fspath(v), ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x, where) for x in v) + "]"
    raise _invalid("config", f"{where}: cannot write {type(v).__name__} {v!r} as TOML")


def _key(k):
    k = str(k)
    bare = k and all(c.isalnum() and c.isascii() or c in "-_" for c in k)
    return k if bare else json.dumps(k, ensure_ascii=False)


def _plain(config):
    """Paths as strings, tuples as lists, None dropped (tomli_w's input)."""
    if isinstance(config, dict):
        return {str(k): _plain(v) for k, v in config.items() if v is not None}
    if isinstance(config, (list, tuple)):
        return [_plain(v) for v in config]
    if isinstance(config, os.PathLike):
        return os.fspath(config)
    return config


def dumps(config):
    """TOML text of a configuration dict (keys with None values are left out)."""
    config = _plain(config)
    try:
        import tomli_w
    except ImportError:
        tomli_w = None
    if tomli_w is not None:
        return tomli_w.dumps(config)
    lines = []
    tables = []
    for k, v in config.items():
        if isinstance(v, dict):
            tables.append((_key(k), v))
        else:
            lines.append(f"{_key(k)} = {_value(v, k)}")
    while tables:
        name, table = tables.pop(0)
        lines.append("")
        lines.append(f"[{name}]")
        for k, v in table.items():
            if isinstance(v, dict):
                tables.append((f"{name}.{_key(k)}", v))
            else:
                lines.append(f"{_key(k)} = {_value(v, f'[{name}] {k}')}")
    return "\n".join(lines) + "\n"
