"""moto's own Batch test suite, in its server mode, against the emulator (and against stock moto).

Usage: python scripts/conformance.py [--stock] [--report FILE] [-- PYTEST ARGS]

moto's tests come from moto's source distribution of the installed version, downloaded once with
pip into a cache (``$XDG_CACHE_HOME/batch-stacks/moto-<version>``); nothing is vendored. Each run
starts its own server on a free loopback port and stops it afterwards. The outcome of every test is
written as JSON to --report, for the README's table and the conformance test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

from runner.emulator.server import MOTO_API_ENV
from runner.local.process import EMULATOR_ENV, ExecutorOptions, free_port, responds, start_server, stop_server
from runner.local.state import LocalState

SUITE = "tests/test_batch"
STOCK_RESULTS = Path(__file__).resolve().parents[1] / "docs" / "conformance" / "stock-moto-server.json"
# Tests stock moto's server passes and the emulator does not, on purpose: it is closer to AWS.
MORE_FAITHFUL = {
    "test_batch_jobs::test_submit_job_with_timeout": (
        "AWS requires timeout.attemptDurationSeconds >= 60 (Batch API reference, JobTimeout); "
        "moto accepts 1, the emulator answers ClientException"
    ),
}


def moto_tests(cache: Path) -> Path:
    """moto's source tree of the installed version, with its tests (downloaded once)."""
    release = version("moto")
    tree = cache / f"moto-{release}"
    if (tree / SUITE).is_dir():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as download:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"moto=={release}",
                "-d",
                download,
            ],
            check=True,
        )
        (archive,) = Path(download).glob("moto-*.tar.gz")
        with tarfile.open(archive) as sdist:
            members = [m for m in sdist.getmembers() if m.name.startswith(f"moto-{release}/tests/")]
            sdist.extractall(cache, members=members, filter="data")
    return tree


def run_suite(tree: Path, endpoint: str, keys: tuple[str, str] | None, report: Path, extra: list[str]) -> int:
    env = {**os.environ, "TEST_SERVER_MODE": "true", "TEST_SERVER_MODE_ENDPOINT": endpoint}
    plugin: list[str] = []
    if keys:  # sign with the emulator's keys, as a user of `runner local env` does
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = keys
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent), env.get("PYTHONPATH", "")])
        plugin = ["-p", "moto_server_mode_plugin"]
    command = [
        sys.executable,
        "-m",
        "pytest",
        SUITE,
        *plugin,
        "-p",
        "no:cacheprovider",
        "-q",
        "-o",
        "addopts=",
        "--timeout=60",
        f"--junitxml={report.with_suffix('.xml')}",
        *extra,
    ]
    log = report.with_suffix(".log")
    with log.open("w") as output:  # moto's own pytest lines stay in the log: ours are the summary
        return subprocess.run(
            command, cwd=tree, env=env, stdout=output, stderr=subprocess.STDOUT, check=False
        ).returncode


def outcomes(junit: Path) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    result = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        kinds = {child.tag for child in case}
        result[name] = (
            "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
        )
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stock", action="store_true", help="against stock moto's server, not the emulator")
    parser.add_argument("--report", type=Path, default=Path("conformance.json"))
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail unless every test stock moto's server passes (as recorded) passes here too",
    )
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    args.report = args.report.resolve()  # pytest runs in moto's tree
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "batch-stacks"
    tree = moto_tests(cache)
    with tempfile.TemporaryDirectory() as root:
        if args.stock:
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                env={**os.environ, **EMULATOR_ENV},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            endpoint = f"http://127.0.0.1:{port}"
            while not responds(endpoint):
                time.sleep(0.1)
            keys = None
            try:
                code = run_suite(tree, endpoint, keys, args.report, args.pytest_args)
            finally:
                server.terminate()
                server.wait()
        else:
            state = LocalState(Path(root) / "batch-stacks")
            # moto's suite resets moto between tests through its API, closed to everyone else.
            os.environ[MOTO_API_ENV] = "1"
            info, _ = start_server(state, None, ExecutorOptions(slots=4))
            try:
                code = run_suite(tree, info.endpoint_url, state.credentials(), args.report, args.pytest_args)
            finally:
                stop_server(state)
                served = state.log_file.read_text(errors="replace")
                args.report.with_suffix(".emulator.log").write_text(served)
                print(f"emulator log: {served.count('Traceback')} traceback(s)")
    results = outcomes(args.report.with_suffix(".xml"))
    args.report.write_text(json.dumps(results, indent=1, sort_keys=True))
    passed = sum(v == "passed" for v in results.values())
    print(f"{'stock moto' if args.stock else 'emulator'}: {passed} of {len(results)} passed")
    if args.check:
        return check(results)
    return code


def check(results: dict[str, str]) -> int:
    """Every test stock moto's server passes passes on the emulator, but the documented ones."""
    stock = json.loads(STOCK_RESULTS.read_text())
    missing = [
        name
        for name, outcome in sorted(stock.items())
        if outcome == "passed" and results.get(name) != "passed" and name not in MORE_FAITHFUL
    ]
    for name in missing:
        print(f"REGRESSION: {name} passes on stock moto's server but {results.get(name, 'did not run')} here")
    for name, why in MORE_FAITHFUL.items():
        print(f"expected difference: {name}: {why}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
