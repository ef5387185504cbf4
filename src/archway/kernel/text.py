"""Text hygiene: control characters (Unicode category Cc) are refused in every text field a
client sends, except free-text descriptions, which may hold line breaks and tabs but never NUL
(PostgreSQL cannot store it). The patterns are JSON Schema (ECMA 262) spellings of the same
rules, so the OpenAPI documents state exactly what the domains enforce.
"""

from __future__ import annotations

import re

# Cc is exactly U+0000–U+001F and U+007F–U+009F.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
NO_CONTROL_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
"""JSON Schema ``pattern``: no control character."""
NO_NUL_PATTERN = r"^[^\x00]*$"
"""JSON Schema ``pattern`` of free text: anything but NUL."""
NOT_BLANK_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
"""JSON Schema ``pattern``: no control character and not only spaces (a name)."""


def has_control_character(text: str) -> bool:
    return _CONTROL.search(text) is not None


def has_nul(text: str) -> bool:
    return "\x00" in text
