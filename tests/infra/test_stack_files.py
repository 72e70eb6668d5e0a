"""Stack files read the way the Pulumi CLI hands them to the program."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infra.stack_files import StackFileError, load_stack_config, stack_names
from tests.infra.conftest import PROJECT_DIR


def test_stack_config_is_passed_as_pulumi_would():
    config = load_stack_config(PROJECT_DIR, "dev")
    assert config["aws:region"] == "us-east-1"
    assert json.loads(config["batch-stacks:compute"])["purchaseModel"] == "spot"


def test_missing_stack_file_lists_the_stacks():
    assert stack_names(PROJECT_DIR) == ["dev", "prod"]
    with pytest.raises(StackFileError, match=r"no stack file Pulumi.qa.yaml .*use one of: dev, prod"):
        load_stack_config(PROJECT_DIR, "qa")


def test_encrypted_secret_is_a_clear_error(tmp_path: Path):
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.lab.yaml").write_text("config:\n  batch-stacks:token:\n    secure: AAABAB==\n")
    with pytest.raises(StackFileError, match="encrypted secret"):
        load_stack_config(tmp_path, "lab")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "config: [1, 2]\n",
            "Pulumi.lab.yaml: `config` should be a map of settings (key: value), got a list",
        ),
        (
            "config: just words\n",
            "Pulumi.lab.yaml: `config` should be a map of settings (key: value), got a string",
        ),
        ("- a\n- b\n", "Pulumi.lab.yaml should be a map with a `config:` key, got a list"),
    ],
)
def test_a_stack_file_of_the_wrong_shape_is_one_line(tmp_path: Path, text: str, message: str):
    shutil.copy(PROJECT_DIR / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "Pulumi.lab.yaml").write_text(text)
    with pytest.raises(StackFileError) as caught:
        load_stack_config(tmp_path, "lab")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
