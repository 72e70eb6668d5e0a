"""What the emulator and its clients agree on over HTTP (neither side imports the other).

Every response of the emulator names which local stack it is: the identity its state folder was
given when it was first made (``runner local reset`` makes a new one). A run records it, so the
run is found again wherever that emulator answers now (another port after a restart, or the
owner's endpoint for a teammate).
"""

IDENTITY_HEADER = "x-batch-stacks-emulator"
