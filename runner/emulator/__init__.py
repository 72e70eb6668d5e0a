"""The emulator's server side: what runs inside moto's server process (started by `runner local up`).

``server`` is the process's entry point, ``backend`` wraps moto's Batch backend, ``executor`` runs
each job as a local process with AWS Batch's semantics, ``gate`` and ``iam`` decide who may call
it and what a task's role may do.
Nothing here imports the runner's client code, and the client code never imports this package.
"""
