"""The engine's optional C loop (ktrace_cli/trace/fastloop.c); everything else is in pyproject.toml.

A plain shared library loaded with ctypes, not a Python extension: it uses
libc only. optional=True: without a C compiler the install goes on and the
engine runs its pure-Python loop (docs/DESIGN.md, Speed).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "ktrace_cli.trace._fastloop",
            ["ktrace_cli/trace/fastloop.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
