"""What runs inside a sweep's task, in the job's container: ``launcher.py``, one file that needs only
Python 3 and boto3 (the emulator runs the same file as a local process)."""
