"""Failures every healthy program has, which --errors counts apart from the rest.

NOISE is data: one row per rule, the first matching row wins.  A row matches
a failed call when its syscall name is in `syscalls`, its errno name (in the
process's own ABI) is in `errnos`, and, when `paths` is not empty, the
call's subject matches one of the fnmatch patterns.  The subject is the
call's first NAMI path, else the address of its sockaddr (`AF_UNIX:/path`),
else what its descriptor was.

`when` names an extra condition:
- "always": the row alone decides;
- "exec_retry": only when the same process later execs a file of the same
  base name successfully (execvp(3) and the shells try each PATH directory
  in turn; the misses before the hit are no failure).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from functools import cache

_OPENS = "open openat openat2 creat access faccessat faccessat2 eaccess stat lstat newfstatat fstatat statx readlink readlinkat"
_XATTR = ("getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr "
          "extattr_get_file extattr_get_link extattr_get_fd extattr_list_file extattr_list_link extattr_list_fd")  # fmt: skip

# (label, syscalls, errnos, paths, when)
NOISE: tuple[tuple[str, str, str, str, str], ...] = (
    ("execvp PATH search", "execve execveat", "ENOENT ENOTDIR EACCES", "", "exec_retry"),
    ("dynamic loader search", _OPENS, "ENOENT ENOTDIR",
     "/etc/ld.so.preload */glibc-hwcaps/* *.so *.so.* */tls/* */haswell/* */x86_64/* */avx512_1/* "
     "/var/run/ld-elf*.so.hints /etc/libmap.conf /usr/local/etc/libmap.d /etc/libmap32.conf",
     "always"),
    ("malloc options probe", "readlink readlinkat", "ENOENT", "/etc/malloc.conf /etc/malloc.conf.*", "always"),
    ("locale lookup", _OPENS, "ENOENT ENOTDIR",
     "/usr/lib/locale/* /usr/share/locale/* /usr/share/locale-langpack/* /usr/lib/*/gconv/* *.mo /usr/share/i18n/*",
     "always"),
    ("xattr probe", _XATTR, "ENODATA ENOATTR EOPNOTSUPP ENOTSUP", "", "always"),
    ("isatty probe", "ioctl", "ENOTTY", "", "always"),
    ("nscd connect", "connect socket", "ENOENT ECONNREFUSED EACCES",
     "AF_UNIX:/var/run/nscd/socket AF_UNIX:/run/nscd/socket AF_LOCAL:/var/run/nscd/socket AF_LOCAL:/run/nscd/socket",
     "always"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Rule:
    label: str
    syscalls: frozenset[str]
    errnos: frozenset[str]
    paths: re.Pattern[str] | None
    when: str


@cache
def rules() -> tuple[Rule, ...]:
    out = []
    for label, syscalls, errnos, paths, when in NOISE:
        pattern = None
        if paths:
            pattern = re.compile("|".join(fnmatch.translate(p) for p in paths.split()))
        out.append(Rule(label, frozenset(syscalls.split()), frozenset(errnos.split()), pattern, when))
    return tuple(out)


def match(syscall: str, errno: str, subject: str | None) -> Rule | None:
    """The first rule that matches a failed call, None for an unexpected failure."""
    for rule in rules():
        if syscall not in rule.syscalls or errno not in rule.errnos:
            continue
        if rule.paths is not None and (subject is None or not rule.paths.match(subject)):
            continue
        return rule
    return None
