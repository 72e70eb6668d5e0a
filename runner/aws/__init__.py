"""AWS-facing reads and writes: clients, Batch jobs, logs, and the stack outputs."""
