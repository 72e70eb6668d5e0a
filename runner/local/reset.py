"""`runner local reset --stack S`: one stack out of the running emulator, with its data and runs."""

from __future__ import annotations

from runner.aws.clients import AwsTarget, aws_errors
from runner.errors import RunnerError
from runner.local.process import running_server
from runner.local.state import LocalState
from runner.runs.store import RunStore

DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


def reset_stack(state: LocalState, stack: str) -> int:
    """Remove ``stack`` from the running emulator: what its deployment created and every object
    under its data prefix (the bucket too, unless another deployed stack uses it). Returns how many
    resources and objects were removed."""
    info = running_server(state)
    if info is None:
        raise RunnerError(
            "reset --stack removes a stack from the running emulator; start it with `runner local up` "
            "(or `runner local reset` wipes everything)"
        )
    outputs = state.outputs(stack)
    deployment = state.deployment(stack)
    target = AwsTarget(outputs.region, info.endpoint_url, state.credentials())
    removed = 0
    if outputs.data is not None:
        s3 = target.client("s3")
        bucket, prefix = outputs.data.bucket, outputs.data.prefix
        with aws_errors():
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
            for start in range(0, len(keys), DELETE_BATCH):
                chunk = keys[start : start + DELETE_BATCH]
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True}
                )
            removed += len(keys)
            others = [s for s in state.deployed_stacks() if s != stack]
            if not any((o := state.outputs(s).data) and o.bucket == bucket for s in others):
                s3.delete_bucket(Bucket=bucket)
    from runner.local.provisioner import EmulatorMocks  # the Pulumi SDK, only to tear down

    created = deployment.created if deployment else []
    left = EmulatorMocks(target).teardown(created)
    state.forget_stack(stack)
    if left:
        raise RunnerError(
            f"could not remove all of '{stack}' ({'; '.join(left)}); `runner local reset` wipes everything"
        )
    return removed + len(created)


def forget_local_runs(store: RunStore, emulator: str | None, stack: str | None = None) -> int:
    """Forget the records of the runs the local stack ``emulator`` ran (of ``stack`` only, if
    given), as its reset took their jobs and data. Returns how many."""
    records, _ = store.scan()
    forgotten = 0
    for record in records:
        if record.endpoint_url is None or record.emulator != emulator:
            continue
        if stack is not None and record.stack != stack:
            continue
        store.remove(record.run_id)
        forgotten += 1
    return forgotten
