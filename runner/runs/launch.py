"""How a launched task starts, the same on AWS and on the emulator: a short bootstrap in the
container's command fetches the run's package from the data bucket by its digest, checks it,
unpacks it and runs the launcher inside it. The launcher then runs the user's command in the code
folder, once per row of a sweep or once for a plain task.

So neither the launcher nor the user's code has to be in the image: the image needs Python 3.8+
and boto3 (``examples/Dockerfile``). Only the interpreter differs by target: the image's
``python3`` on AWS, this interpreter (which has boto3) on the emulator.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from runner.aws.data_store import put_if_absent
from runner.aws.stack_outputs import DataLocation, StackOutputs
from runner.errors import InvalidInputError
from runner.runs.code_package import CodePackage, package_code

IMAGE_PYTHON = "python3"
PACKAGES_FOLDER = "code/"
PACKAGE_URI_ENV = "RUNNER_PACKAGE_URI"
PACKAGE_SHA256_ENV = "RUNNER_PACKAGE_SHA256"
CODE_DIGEST_ENV = "RUNNER_CODE_DIGEST"
CODE_COMMIT_ENV = "RUNNER_CODE_COMMIT"
COMMAND_ENV = "RUNNER_COMMAND"
LAUNCH_ENV = frozenset({PACKAGE_URI_ENV, PACKAGE_SHA256_ENV, CODE_DIGEST_ENV, CODE_COMMIT_ENV, COMMAND_ENV})

# Runs as ``python3 -c``: fetch, check, unpack, then run the launcher in this same process (boto3
# is loaded once; the task's signals and exit code are the launcher's). Any failure is one line
# and exit code 1.
BOOTSTRAP = """\
import hashlib, io, os, runpy, sys, tarfile, tempfile
from urllib.parse import urlparse
uri = os.environ["RUNNER_PACKAGE_URI"]
def fail(why):
    sys.exit("[batch-stacks] the code package %s %s" % (uri, why))
try:
    import boto3
    parsed = urlparse(uri)
    body = boto3.client("s3").get_object(Bucket=parsed.netloc, Key=parsed.path[1:])["Body"].read()
except Exception as err:
    fail("cannot be read: %s" % err)
if hashlib.sha256(body).hexdigest() != os.environ["RUNNER_PACKAGE_SHA256"]:
    fail("does not match its digest; submit again")
folder = tempfile.mkdtemp(prefix="batch-stacks-code-")
with tarfile.open(fileobj=io.BytesIO(body)) as archive:
    for member in archive.getmembers():
        parts = member.name.split("/")
        if not (member.isfile() or member.isdir()) or member.name.startswith("/") or ".." in parts:
            fail("holds %s, which is not a plain file inside it" % member.name)
    if hasattr(tarfile, "data_filter"):
        archive.extractall(folder, filter="data")
    else:
        archive.extractall(folder)
os.environ["RUNNER_PACKAGE_DIR"] = folder
sys.argv = [os.path.join(folder, ".batch-stacks", "launcher.py")]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def launcher_source() -> bytes:
    """The launcher this runner ships (``runner/task/launcher.py``)."""
    return (files("runner.task") / "launcher.py").read_bytes()


def interpreter(endpoint_url: str | None) -> str:
    """The task's Python: the image's on AWS, this one (with boto3) on the emulator."""
    return sys.executable if endpoint_url else IMAGE_PYTHON


@dataclass(frozen=True)
class Launch:
    """A run's package and where it lives: what the container runs and the variables it reads."""

    package: CodePackage
    data: DataLocation
    python: str

    @property
    def key(self) -> str:
        return self.data.key(PACKAGES_FOLDER, self.package.sha256, ".tar.gz")

    @property
    def uri(self) -> str:
        return f"s3://{self.data.bucket}/{self.key}"

    def command(self) -> list[str]:
        return [self.python, "-c", BOOTSTRAP]

    def environment(self, command: list[str]) -> dict[str, str]:
        env = {
            PACKAGE_URI_ENV: self.uri,
            PACKAGE_SHA256_ENV: self.package.sha256,
            COMMAND_ENV: json.dumps(command),
        }
        if self.package.code_digest:
            env[CODE_DIGEST_ENV] = self.package.code_digest
        git = self.package.git
        if git is not None:
            env[CODE_COMMIT_ENV] = git.commit + ("+dirty" if git.dirty else "")
        return env

    def record(self, uploaded: bool) -> dict[str, Any] | None:
        """The code as the run record keeps it (None without --code); ``uploaded``: this run sent
        the package (False: the bucket had it already)."""
        code = self.package.code_json()
        return None if code is None else {**code, "package": self.uri, "uploaded": uploaded}

    def upload(self, s3: Any) -> bool:
        """The package, unless the bucket has it already; returns whether it was sent."""
        return put_if_absent(s3, self.data.bucket, self.key, self.package.body, "application/gzip")


def plan_launch(outputs: StackOutputs, code: Path | None, python: str) -> Launch:
    """Pack ``--code`` (or the launcher alone) for ``outputs``' stack; nothing is uploaded yet."""
    if outputs.data is None:
        raise InvalidInputError(
            f"stack '{outputs.stack}' has no data bucket to ship --code through; set "
            f"batch-stacks:data.bucket in Pulumi.{outputs.stack}.yaml and run `pulumi up`"
        )
    return Launch(package_code(code, launcher_source()), outputs.data, python)
