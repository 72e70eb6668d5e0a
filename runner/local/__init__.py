"""The embedded local default, client side: start and stop the emulator's process, and deploy this
project's Pulumi program into it (``program`` runs it under the mock engine, ``provisioner`` creates
each resource in the emulator, ``deploy`` keeps or replaces a stack, ``state`` is what is on disk)."""
