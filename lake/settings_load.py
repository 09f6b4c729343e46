"""Loading the configuration: the YAML file, the ``LAKE_*`` environment and the flags, laid over
the defaults and validated layer by layer (see :mod:`lake.settings` for the precedence), and the
checks that a root or a directory can be written before anything is made there.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_settings import YamlConfigSettingsSource

from lake.envvars import EnvError, Loc, read_environment
from lake.settings import DEFAULT_CONFIG_PATH, ConfigError, Settings, StorageConfig


class _TextDatesLoader(yaml.SafeLoader):
    """Leaves dates as text so that pydantic validates them and names the key when one is wrong
    (YAML's own resolver fails on ``2024-13-01`` without saying where)."""


_TextDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _YamlSource(YamlConfigSettingsSource):
    def _read_file(self, file_path: Any) -> dict[str, Any]:
        with open(file_path, encoding="utf-8") as fh:
            data = yaml.load(fh, Loader=_TextDatesLoader)
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise ValueError("the file must hold a mapping of keys to values")
        return data


@dataclass(frozen=True)
class _Layer:
    """One source of settings data and the names its values go by in an error."""

    data: Mapping[str, Any]
    origin: str
    names: Mapping[Loc, str] = field(default_factory=dict)  # key path → variable or flag

    def named(self, loc: tuple[int | str, ...]) -> str:
        """The variables or flags that set the key at ``loc`` (or what lies below it)."""
        best = 0
        found: list[str] = []
        for path, name in self.names.items():
            n = min(len(path), len(loc))
            if path[:n] == loc[:n] and n >= best:
                found = [name] if n > best else [*found, name]
                best = n
        return ", ".join(found) or self.origin

    def error(self, exc: ValidationError) -> ConfigError:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "config"
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        return ConfigError(f"{self.named(tuple(err['loc']))}: {where}: {msg}{more}")


def _merged(low: Mapping[str, Any], high: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(low)
    for key, value in high.items():
        below = out.get(key)
        both = isinstance(below, Mapping) and isinstance(value, Mapping)
        out[key] = _merged(below, value) if both else value  # type: ignore[arg-type]
    return out


def _config_file(config_path: str | Path | None) -> Path | None:
    named = "--config" if config_path is not None else "LAKE_CONFIG"
    explicit = config_path if config_path is not None else os.environ.get("LAKE_CONFIG")
    if not explicit:
        return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.is_file() else None
    path = Path(explicit)
    if path.is_dir():
        raise ConfigError(f"{named}: {path} is a directory, not a YAML file")
    if not path.is_file():
        raise ConfigError(f"{named}: config file {path} does not exist")
    return path


def _file_layer(path: Path) -> _Layer:
    origin = str(path)
    try:
        return _Layer(_YamlSource(Settings, yaml_file=path).yaml_data, origin)
    except yaml.MarkedYAMLError as exc:
        line = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ConfigError(f"{origin}: invalid YAML{line}: {exc.problem or exc.context}") from None
    except (OSError, ValueError) as exc:  # unreadable file, not a mapping, not UTF-8
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{origin}: {first}") from None


def load_settings(
    config_path: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    override_names: Mapping[str, str] | None = None,
) -> Settings:
    """Load and validate the configuration: the file, then the environment, then ``overrides``.

    Args:
        config_path: YAML file; ``None`` means ``$LAKE_CONFIG`` or ``config/lake.yaml`` if present.
        overrides: values that win over every other source, e.g. ``{"storage": {"root": ...}}``.
        override_names: what an error calls each override, by dotted key, e.g.
            ``{"storage.root": "--lake"}`` (default: ``overrides``).

    Raises:
        ConfigError: with one line naming the source (file, variable or flag), the key and what
            is wrong.
    """
    path = _config_file(config_path)
    try:
        env = read_environment(Settings, os.environ)
    except EnvError as exc:
        raise ConfigError(str(exc)) from None
    names = {tuple(k.split(".")): v for k, v in (override_names or {}).items()}
    layers = [
        _file_layer(path) if path is not None else _Layer({}, "config"),
        _Layer(env.data, "the environment", env.names),
        _Layer(overrides or {}, "overrides", names),
    ]
    data: dict[str, Any] = {}
    settings = Settings()
    for layer in layers:
        data = _merged(data, layer.data)
        try:
            settings = Settings(**data)
        except ValidationError as exc:
            raise layer.error(exc) from None
    return settings


def check_writable_root(storage: StorageConfig) -> None:
    """Fail early, before anything is created, when a local root cannot be written.

    Raises:
        ConfigError: the root is a file, or the nearest existing ancestor is not writable.
    """
    if storage.is_local:
        check_writable_dir(storage.local_root, "storage.root")


def check_writable_dir(directory: Path, what: str) -> None:
    """Fail, creating nothing, unless ``directory`` is, or can be made, a writable directory.

    Args:
        directory: the directory (it need not exist).
        what: what it is called in the error, e.g. ``storage.root``.

    Raises:
        ConfigError: it is a file, a parent of it is a file, or it cannot be written.
    """
    root = directory.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{what} {root} exists and is not a directory")
    probe = root
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{what} {root} is not writable ({probe} is not a directory)")
    # os.access() says yes to root on any mode bits, so try it: a nameless temp file leaves nothing.
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(f"{what} {root} is not writable ({probe}: {reason})") from None
