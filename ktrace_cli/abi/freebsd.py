"""FreeBSD native ABI tables: syscall names, errno strings, signals, si_codes, capability rights."""

from __future__ import annotations

import os
from functools import cache

DATA_DIR = os.path.join(os.path.dirname(__file__), "data")  # a str: pathlib costs pykdump's start-up

# ELAST in sys/sys/errno.h: the largest errno libc has a string for.
ERRNO_MAX = 97

# kdump's ERESTART / EJUSTRETURN pseudo-errors as they appear in ktr_error.
ERESTART = -1
EJUSTRETURN = -2

# FreeBSD realtime signals: SIGRTMIN 65 .. SIGRTMAX 126, printed as SIGRT0..SIGRT61.
SIGRTMIN = 65
SIGRTMAX = 126

# cap_rights_t layout (sys/sys/capsicum.h): two 64-bit words; bits 57..61 of each
# word carry "1 << word index", bits 62..63 of word 0 the rights version.
_CAP_INDEX_SHIFT = 57
_CAP_INDEX_MASK = 0x1F
_CAP_RIGHT_BITS = (1 << _CAP_INDEX_SHIFT) - 1
_CAP_WORDS = 2


def data_rows(filename: str) -> list[list[str]]:
    """Tab-separated rows of a file in abi/data, without '#' comment lines and blank lines."""
    rows: list[list[str]] = []
    with open(os.path.join(DATA_DIR, filename), encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            rows.append(line.rstrip("\n").split("\t"))
    return rows


@cache
def _syscall_names() -> tuple[str, ...]:
    rows = data_rows("freebsd_syscalls.tsv")
    names = tuple(name for _number, name in rows)
    if [int(number) for number, _name in rows] != list(range(len(names))):
        raise ValueError("freebsd_syscalls.tsv is not numbered 0..N-1")
    return names


@cache
def _syscall_numbers() -> dict[str, int]:
    numbers: dict[str, int] = {}
    for number, name in enumerate(_syscall_names()):
        numbers.setdefault(name, number)
    return numbers


def syscall_name(code: int) -> str | None:
    """Name kdump prints for a native syscall number (e.g. 5 -> 'open'); None when out of range."""
    names = _syscall_names()
    if 0 <= code < len(names):
        return names[code]
    return None


def syscall_number(name: str) -> int | None:
    """Lowest native syscall number carrying NAME, or None."""
    return _syscall_numbers().get(name)


def syscall_count() -> int:
    """Number of entries in the native syscall name table."""
    return len(_syscall_names())


@cache
def _errno_table() -> dict[int, tuple[str, str]]:
    return {int(number): (name, text) for number, name, text in data_rows("freebsd_errno.tsv")}


def strerror(n: int) -> str:
    """FreeBSD libc strerror(3) text: 'No error: 0', the errlst string, or 'Unknown error: N'."""
    entry = _errno_table().get(n)
    if entry is None:
        return f"Unknown error: {n}"
    return entry[1]


def errno_name(n: int) -> str | None:
    """Symbolic FreeBSD errno name (2 -> 'ENOENT'); None for 0 and unknown values."""
    entry = _errno_table().get(n)
    if entry is None or n == 0:
        return None
    return entry[0]


@cache
def _errno_numbers() -> dict[str, int]:
    return {name: number for number, (name, _text) in _errno_table().items() if number != 0}


def errno_number(name: str) -> int | None:
    """FreeBSD errno value of a symbolic name ('EAGAIN' -> 35), or None."""
    return _errno_numbers().get(name)


@cache
def _signal_names() -> dict[int, str]:
    return {int(number): name for number, name in data_rows("freebsd_signals.tsv")}


def signal_name(n: int) -> str | None:
    """FreeBSD signal name as libsysdecode prints it; None means kdump prints 'SIG %d'."""
    if SIGRTMIN <= n <= SIGRTMAX:
        return f"SIGRT{n - SIGRTMIN}"
    return _signal_names().get(n)


@cache
def _signal_numbers() -> dict[str, int]:
    return {name: number for number, name in _signal_names().items()}


def signal_number(name: str) -> int | None:
    """FreeBSD signal number of a name ('SIGUSR1' -> 30, 'SIGRT3' -> 68), or None."""
    if name.startswith("SIGRT") and name[5:].isdigit():
        number = SIGRTMIN + int(name[5:])
        return number if number <= SIGRTMAX else None
    return _signal_numbers().get(name)


@cache
def _sigcode_tables() -> tuple[tuple[tuple[int, str], ...], dict[int, tuple[tuple[int, str], ...]]]:
    generic: list[tuple[int, str]] = []
    per_signal: dict[int, list[tuple[int, str]]] = {}
    for signal, code, name in data_rows("freebsd_sigcodes.tsv"):
        entry = (int(code, 0), name)
        if signal == "*":
            generic.append(entry)
        else:
            per_signal.setdefault(int(signal), []).append(entry)
    return tuple(generic), {sig: tuple(codes) for sig, codes in per_signal.items()}


def _first_match(table: tuple[tuple[int, str], ...], code: int) -> str | None:
    for value, name in table:
        if value == code:
            return name
    return None


def sigcode_name(signo: int, code: int) -> str | None:
    """sysdecode_sigcode: the generic SI_* name first, then the signal's own code table."""
    generic, per_signal = _sigcode_tables()
    name = _first_match(generic, code)
    if name is not None:
        return name
    return _first_match(per_signal.get(signo, ()), code)


def _right_word(right: int) -> int | None:
    """Word index a right belongs to (its index field is 1 << word), or None if malformed."""
    index_field = (right >> _CAP_INDEX_SHIFT) & _CAP_INDEX_MASK
    if index_field == 0 or index_field & (index_field - 1):
        return None
    word = index_field.bit_length() - 1
    return word if word < _CAP_WORDS else None


def _as_rights(right: int) -> tuple[int, ...]:
    """A single right as a full cap_rights_t (what cap_rights_init(&r, right) builds)."""
    words = [1 << (_CAP_INDEX_SHIFT + i) for i in range(_CAP_WORDS)]
    word = _right_word(right)
    if word is not None:
        words[word] |= right
    return tuple(words)


def _rights_contain(big: tuple[int, ...], little: tuple[int, ...]) -> bool:
    return all(b & s == s for b, s in zip(big, little, strict=True))


@cache
def _caprights_ordered() -> tuple[tuple[str, int], ...]:
    """The caprights table reordered the way libsysdecode's start-up pass does it.

    libsysdecode repeatedly sweeps the header-ordered table and, for each entry,
    swaps in any later entry whose rights include it, so supersets come before
    their subsets and one pass can print a minimal list. The comparison keeps
    using the entry's original value after a swap; that is reproduced here so the
    resulting order (and therefore kdump's output) is the same.
    """
    table = [(name, int(value, 16)) for name, value in data_rows("freebsd_caprights.tsv")]
    for _sweep in range(len(table) * len(table) + 1):
        swapped = False
        for t in range(len(table)):
            held = _as_rights(table[t][1])
            for q in range(t + 1, len(table)):
                if _rights_contain(_as_rights(table[q][1]), held):
                    table[t], table[q] = table[q], table[t]
                    swapped = True
        if not swapped:
            break
    return tuple(table)


def cap_rights_text(words: tuple[int, int]) -> str:
    """sysdecode_cap_rights: names of the rights held, most composite first, or 'CAP_NONE'.

    'invalid cap_rights_t' when a word's index field is wrong; ',unknown rights'
    is appended when bits remain that no table entry names.
    """
    version = (words[0] >> 62) & 0x3
    size = version + 2
    rights = [(words[i] if i < len(words) else 0) & 0xFFFFFFFFFFFFFFFF for i in range(size)]
    for i, word in enumerate(rights):
        if (word >> _CAP_INDEX_SHIFT) & _CAP_INDEX_MASK != 1 << i:
            return "invalid cap_rights_t"
    rights = rights[:_CAP_WORDS]
    remaining = list(rights)
    printed = list(_as_rights(0))
    names: list[str] = []
    for name, right in _caprights_ordered():
        slot = _right_word(right)
        if slot is None or rights[slot] & right != right:
            continue
        remaining[slot] &= ~(right & _CAP_RIGHT_BITS)
        if printed[slot] & right == right:
            continue
        printed[slot] |= right
        names.append(name)
    text = ",".join(names) if names else "CAP_NONE"
    if not _rights_contain(_as_rights(0), tuple(remaining)):
        text += ",unknown rights"
    return text


def cap_rights_words(*names: str) -> tuple[int, int]:
    """cap_rights_t words holding the named rights (a helper for writers and tests)."""
    values = dict((name, int(value, 16)) for name, value in data_rows("freebsd_caprights.tsv"))
    words = list(_as_rights(0))
    for name in names:
        right = values[name]
        word = _right_word(right)
        if word is None:
            raise ValueError(f"malformed right {name}")
        words[word] |= right
    return words[0], words[1]
