"""runner: submit, watch and summarize AWS Batch array jobs on a batch-stacks stack."""
