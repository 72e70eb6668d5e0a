"""AWS Batch's documented limits, shared by the stack settings and the runner's submit checks.

Pure constants: importing this pulls in neither Pulumi nor boto3.
"""

from __future__ import annotations

MAX_JOB_VCPUS = 192  # the largest EC2 instances Batch can place a single container on
MIN_MEMORY_MIB = 128
MAX_MEMORY_MIB = 1_572_864  # 1.5 TiB, the largest memory-optimised instances Batch uses
MIN_TIMEOUT_SECONDS = 60  # Batch's minimum attemptDurationSeconds
MAX_TIMEOUT_SECONDS = 14 * 24 * 3600  # longer attempts are almost always a forgotten unit
MIN_ATTEMPTS, MAX_ATTEMPTS = 1, 10
MAX_ARRAY_SIZE = 10_000  # children of one array job
MAX_TAGS = 50
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256
MAX_JOB_NAME = 128
MAX_CONTAINER_OVERRIDES_BYTES = 8 * 1024  # SubmitJob rejects larger containerOverrides
MAX_SUBMIT_PAYLOAD_BYTES = 30 * 1024  # and larger job payloads
MAX_DEPENDS_ON = 20
SUBMIT_JOB_PER_SECOND = 50  # SubmitJob's account-wide rate limit
