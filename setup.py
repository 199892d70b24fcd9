"""The engine's optional C loop (ktrace_cli/trace/fastloop.c); everything else is in pyproject.toml.

A plain shared library loaded with ctypes, not a Python extension: it uses
libc only. optional=True: without a C compiler the install goes on and the
engine runs its pure-Python loop (docs/DESIGN.md, Speed).
"""

import os

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class BuildExt(build_ext):
    """Where a build copies the library into the source tree (an editable install), the old
    file is replaced by a new one, never rewritten in place: a running engine has it mapped
    and would crash (SIGBUS) if its pages changed under it."""

    def copy_file(self, infile, outfile, *args, **kwargs):  # type: ignore[no-untyped-def]
        if isinstance(outfile, str) and outfile.endswith(".so") and os.path.isfile(outfile):
            os.unlink(outfile)
        return super().copy_file(infile, outfile, *args, **kwargs)


setup(
    cmdclass={"build_ext": BuildExt},
    ext_modules=[
        Extension(
            "ktrace_cli.trace._fastloop",
            ["ktrace_cli/trace/fastloop.c"],
            extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra"],
            optional=True,
        )
    ]
)
