"""Reading ``Pulumi.yaml`` and ``Pulumi.<stack>.yaml``: the one place both the program's tools and
the runner read a stack file (the Pulumi CLI itself hands the program its config).

Config comes out the way the Pulumi CLI passes it (``PULUMI_CONFIG``): project-namespaced keys,
objects and non-strings as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml


class StackFileError(ValueError):
    """A project or stack file that cannot be read, as one line that says what to do."""


def stack_names(project_dir: Path) -> list[str]:
    """Every stack with a ``Pulumi.<stack>.yaml`` in the project, sorted."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def project_name(project_dir: Path) -> str:
    """The ``name`` in Pulumi.yaml."""
    path = project_dir / "Pulumi.yaml"
    try:
        return str(yaml.safe_load(path.read_text())["name"])
    except (OSError, KeyError, TypeError, yaml.YAMLError) as err:
        raise StackFileError(f"cannot read the project name from {path}: {err}") from None


def load_stack_config(project_dir: Path, stack: str) -> dict[str, str]:
    """The stack's config as the Pulumi CLI hands it to a program (``PULUMI_CONFIG``)."""
    project = project_name(project_dir)
    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        known = stack_names(project_dir)
        raise StackFileError(
            f"no stack file {path.name} in {project_dir}; use one of: {', '.join(known) or 'none'}"
        )
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        first_line = str(err).splitlines()[0]
        raise StackFileError(f"{path.name} is not valid YAML ({first_line}); fix the file") from None
    if not isinstance(document, dict):
        raise StackFileError(
            f"{path.name} should be a map with a `config:` key, got {_kind(document)}; fix the file"
        )
    settings = document.get("config") or {}
    if not isinstance(settings, dict):
        raise StackFileError(
            f"{path.name}: `config` should be a map of settings (key: value), got {_kind(settings)}; fix the file"
        )
    config: dict[str, str] = {}
    for key, value in settings.items():
        full_key = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and set(value) == {"secure"}:
            raise StackFileError(
                f"{path.name}: {full_key} is an encrypted secret, which only the Pulumi CLI can "
                "decrypt; use a plain value for local runs"
            )
        config[full_key] = value if isinstance(value, str) else json.dumps(value)
    return config


def _kind(value: object) -> str:
    return {list: "a list", str: "a string", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )
