"""Syscall, errno, signal and flag tables for FreeBSD and Linux, data-driven."""
