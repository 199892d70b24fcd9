"""ktrace_cli: FreeBSD ktrace(1) and kdump(1) for Linux."""

__version__ = "0.1.0"
