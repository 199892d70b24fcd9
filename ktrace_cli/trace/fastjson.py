"""json.dumps and json.loads for the control messages, without loading the json package.

The json package's pure-Python halves (json.decoder, json.encoder) compile
regular expressions when they are imported: importing json loads `re`
(and with it enum), a quarter of pyktrace's own start-up. Both halves
only wrap the C accelerator `_json`, which does all the work for the
messages here; this module builds the same encoder and scanner from it
with json's default settings, so the text written and the values read
are exactly json's (tests/unit/test_fastjson.py compares them). Where
`_json` is missing or takes other arguments (another Python), the json
package is used instead.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # a Python without the accelerator: json's pure-Python code does it all
    _json = None  # type: ignore[assignment]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up)
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

WHITESPACE = " \t\n\r"  # JSON's insignificant whitespace, skipped around the value
COMPACT = (",", ":")
DEFAULT_SEPARATORS = (", ", ": ")  # json.dumps's
BOM = "\ufeff"  # json refuses it: its error is left to json


def _unserializable(o: object) -> object:
    """json.JSONEncoder.default: what json says of a value it cannot write."""
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


class _Context:
    """The attributes the C scanner reads from a json.JSONDecoder, with its defaults."""

    __slots__ = ("strict", "object_hook", "object_pairs_hook", "parse_float", "parse_int", "parse_constant")

    def __init__(self) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = None
        self.parse_float = float
        self.parse_int = int
        constants = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}
        self.parse_constant = constants.__getitem__


def _encoder(separators: tuple[str, str]) -> Callable[[object, int], Sequence[str]]:
    """json.JSONEncoder's C encoder with json.dumps's defaults and these separators.

    A fresh one per message, as json makes it: its table of the containers
    being written (for the circular-reference check) starts empty.
    """
    return _json.make_encoder({}, _unserializable, _json.encode_basestring_ascii, None,
                              separators[1], separators[0], False, False, True)  # fmt: skip


def _c_scanner() -> Callable[[str, int], tuple[object, int]] | None:
    """The C scanner with json.loads's defaults, or None without a `_json` built as json expects."""
    if _json is None:
        return None
    try:
        scanner = _json.make_scanner(_Context())  # type: ignore[arg-type]  # typeshed: any object with these attributes
        if scanner('{"a":[1,"b",null,true]}', 0) != ({"a": [1, "b", None, True]}, 23):
            return None
        if "".join(_encoder(COMPACT)({"a": [1, "b", None, True]}, 0)) != '{"a":[1,"b",null,true]}':
            return None
    except Exception:  # another Python's _json: json itself will do
        return None
    return scanner


_SCAN = _c_scanner()


def dumps(obj: object, separators: tuple[str, str] = DEFAULT_SEPARATORS) -> str:
    """json.dumps(obj, separators=separators)."""
    if _SCAN is None or not isinstance(obj, dict | list):
        import json  # the rare case, or the only way (see the module's note)

        return json.dumps(obj, separators=separators)
    return "".join(_encoder(separators)(obj, 0))


def loads(data: bytes | str) -> object:
    """json.loads(data): the value, or json's own exception for what is not JSON.

    A well-formed UTF-8 message is read by the C scanner alone; anything
    else (malformed, another encoding json would detect) is handed to
    json.loads, so that the result or the error is always json's.
    """
    if _SCAN is not None:
        try:
            s = data.decode() if isinstance(data, bytes | bytearray) else data
        except UnicodeDecodeError:
            s = ""
        start = len(s) - len(s.lstrip(WHITESPACE))
        if s and start < len(s) and s[0] != BOM:
            try:
                obj, end = _SCAN(s, start)
            except (StopIteration, ValueError):
                pass
            else:
                if not s[end:].strip(WHITESPACE):
                    return obj
    import json  # not plain JSON: json says what it is, or what is wrong with it

    return json.loads(data)
