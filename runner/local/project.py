"""Which batch-stacks program ``runner local up`` deploys: the checkout you work in, or the one
that ships inside the installed package, so a local stack starts from any folder of your own."""

from __future__ import annotations

from pathlib import Path

from infra import stack_files
from runner.aws.stack_outputs import StackOutputsError, find_project_dir
from runner.errors import RunnerError


def bundled_project_dir() -> Path:
    """The program as it ships inside the installed package (``infra/project/``: Pulumi.yaml, the
    stack files and ``__main__.py``, links to the project's own in a checkout)."""
    import infra

    return Path(infra.__file__).resolve().parent / "project"


def _name(project_dir: Path) -> str:
    try:
        return stack_files.project_name(project_dir)
    except stack_files.StackFileError as err:
        raise RunnerError(str(err)) from None


def local_project_dir(start: Path | None = None) -> tuple[Path, bool]:
    """The project ``local up`` deploys, and whether it is the bundled one: the batch-stacks
    checkout you are in (or RUNNER_PROJECT_DIR), else the program that ships with the package (in
    a folder of your own, even one holding a Pulumi project of its own)."""
    bundled = bundled_project_dir()
    try:
        found = find_project_dir(start)
    except StackOutputsError:
        return bundled, True
    if found.resolve() != bundled and _name(found) != _name(bundled):
        return bundled, True
    return found, found.resolve() == bundled
