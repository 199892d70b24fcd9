"""The STRU entry points callers import: the fields (decode/stru.py) and kdump's text built from them (render/stru_text.py).

There is one registry of struct decoders, decode/stru.STRUCTS; JSON prints
its fields and the text is made from the same fields, so this module only
gathers the two under the names the tests and the --calls JSON use.
"""

from __future__ import annotations

from ktrace_cli.decode.stru import decode_struct, struct_fields, struct_fields_of
from ktrace_cli.render.stru_text import (
    format_sockaddr,
    format_struct,
    format_struct_array,
    strmode,
    struct_array_text,
    struct_text,
)

__all__ = [
    "decode_struct",
    "format_sockaddr",
    "format_struct",
    "format_struct_array",
    "strmode",
    "struct_array_text",
    "struct_fields",
    "struct_fields_of",
    "struct_text",
]
