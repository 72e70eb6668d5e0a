"""The emulator's server side: what runs inside moto's server process (started by `runner local up`).

``server`` is the process's entry point, ``backend`` wraps moto's Batch backend, ``executor`` runs
each job as a local process with AWS Batch's semantics, ``signing`` checks who signed a SubmitJob.
Nothing here imports the runner's client code, and the client code never imports this package.
"""
