"""batch-stacks: one AWS Batch environment per stack. Reads settings, builds, exports."""

import pulumi

from infra.environment import BatchEnvironment
from infra.outputs import stack_outputs
from infra.settings import PROJECT, load_settings

settings = load_settings()
environment = BatchEnvironment(f"{PROJECT}-{settings.stack}", settings)
for key, value in stack_outputs(environment, settings).items():
    pulumi.export(key, value)
