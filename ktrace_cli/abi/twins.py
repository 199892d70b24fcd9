"""FreeBSD system calls whose Linux counterpart has another name (for classes and prototypes)."""

from __future__ import annotations

FREEBSD_TWINS = {
    "fstatat": "newfstatat", "getdirentries": "getdents64", "sigprocmask": "rt_sigprocmask",
    "sigaction": "rt_sigaction", "sigreturn": "rt_sigreturn", "sigsuspend": "rt_sigsuspend",
    "sigpending": "rt_sigpending", "sigtimedwait": "rt_sigtimedwait", "sigwaitinfo": "rt_sigtimedwait",
    "sigqueue": "rt_sigqueueinfo", "thr_kill": "tgkill", "thr_kill2": "tgkill", "thr_exit": "exit",
    "rfork": "clone", "pdfork": "fork", "thr_new": "clone", "pread": "pread64", "pwrite": "pwrite64",
    "kqueue": "epoll_create", "kevent": "epoll_wait", "freebsd11_stat": "stat", "freebsd11_fstat": "fstat",
    "freebsd11_lstat": "lstat", "freebsd11_fstatat": "newfstatat", "fstatfs": "fstatfs",
    "closefrom": "close_range", "shm_open2": "memfd_create", "__getcwd": "getcwd", "funlinkat": "unlinkat",
    "fexecve": "execveat", "wait6": "waitid", "clock_nanosleep": "clock_nanosleep",
    "cap_enter": "capset", "getresuid": "getresuid", "issetugid": "getuid", "eaccess": "access",
    "lchmod": "chmod", "mkfifo": "mknod", "mkfifoat": "mknodat", "posix_openpt": "open",
}  # fmt: skip
