"""Which environment variable names a user may set on a task (``--env``, a table's columns).

The runner, Batch and ECS set their own variables, and a task's identity comes from its job role:
a name that would replace one of those (``AWS_ACCESS_KEY_ID`` makes the task act as other keys and
leaves the secret in the run record and in DescribeJobs; ``RUNNER_*`` overrides the launcher;
``PATH`` in a column makes every row exit 127) is refused before anything is submitted.
"""

from __future__ import annotations

import re

# fullmatch, so a name with a trailing newline ("FOO\n") is not a name. 255 characters at most:
# a longer one is a mistake (a header line pasted as a name), not a variable.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
# Set by the runner's launcher, by Batch and by ECS on every task.
RESERVED_PREFIXES = ("RUNNER_", "AWS_BATCH", "ECS_")
# A column is every row's variable: no AWS_* at all (a row's keys, its region, its endpoint).
COLUMN_RESERVED_PREFIXES = ("AWS_", "RUNNER_", "ECS_")
# Who the task is: its job role's keys, never keys passed in the clear.
CREDENTIAL_NAMES = frozenset(
    {
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_CONFIG_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    }
)
# What a row's command itself runs on: a column of that name would change how every row starts.
SYSTEM_NAMES = frozenset(
    {
        "PATH",
        "HOME",
        "SHELL",
        "USER",
        "PWD",
        "IFS",
        "ENV",
        "BASH_ENV",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "PYTHONPATH",
        "PYTHONHOME",
        "PYTHONSTARTUP",
        "PYTHONUSERBASE",
    }
)


def is_variable_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def env_option_problem(name: str) -> str | None:
    """Why ``--env NAME=...`` may not be set on a task, or None."""
    if not is_variable_name(name):
        return f"--env {name[:40]!r} is not a variable name; use up to 255 letters, digits and _"
    if name.upper() in CREDENTIAL_NAMES:
        return f"--env {name} would give the task other keys than its job role's; grant the job role access instead"
    if name.upper().startswith(RESERVED_PREFIXES):
        return f"--env {name} is reserved (RUNNER_*, AWS_BATCH*, ECS_* are set by the runner and Batch); choose another name"
    return None


def column_problem(name: str) -> str | None:
    """Why a table's column (a variable of every row) may not be called ``name``, or None."""
    if not is_variable_name(name):
        return "is not an environment variable name; use up to 255 letters, digits and _, not starting with a digit"
    if name.upper().startswith(COLUMN_RESERVED_PREFIXES):
        return "is reserved (AWS_*, ECS_* and RUNNER_* are set by Batch and the runner); rename the column"
    if name.upper() in SYSTEM_NAMES:
        return "would replace a variable every command relies on; rename the column"
    return None
