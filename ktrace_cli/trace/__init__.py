"""The Linux ptrace trace engine, capture rules and control protocol."""
