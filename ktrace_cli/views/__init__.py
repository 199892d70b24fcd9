"""Whole-trace views over the call events of decode/pipeline.py: tree, errors, timeline, diff."""
