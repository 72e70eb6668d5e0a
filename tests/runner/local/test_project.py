"""Which program `runner local up` deploys: the checkout, or the one that ships in the package."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.local.project import bundled_project_dir, local_project_dir

CHECKOUT = Path(__file__).resolve().parents[3]


def test_the_package_ships_the_program_and_its_stack_files():
    bundled = bundled_project_dir()
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", "__main__.py"):
        assert (bundled / name).read_bytes() == (CHECKOUT / name).read_bytes(), name


def test_inside_the_checkout_its_program_is_deployed():
    assert local_project_dir(CHECKOUT / "runner" / "local") == (CHECKOUT, False)


def test_in_a_folder_of_your_own_the_shipped_program_is_deployed(tmp_path: Path):
    assert local_project_dir(tmp_path) == (bundled_project_dir(), True)


def test_a_pulumi_project_of_your_own_above_is_not_taken_for_batch_stacks(tmp_path: Path):
    (tmp_path / "Pulumi.yaml").write_text("name: my-lab-infra\nruntime: python\n")
    (tmp_path / "analysis").mkdir()
    assert local_project_dir(tmp_path / "analysis") == (bundled_project_dir(), True)


def test_runner_project_dir_still_decides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RUNNER_PROJECT_DIR", str(CHECKOUT))
    assert local_project_dir(tmp_path) == (CHECKOUT, False)
