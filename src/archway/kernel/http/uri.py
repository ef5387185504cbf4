"""URI references built from request data, safe to put in a header (``Link``, ``Location``).

The path a server hands the app is percent-decoded, so it may hold any character (``€``, a
control character, ``>``, ``"``); the raw query is whatever bytes the client sent. Either would
break a header or add parameters to it (``<…/x>; rel="evil">``). What goes into a header is
therefore written as an RFC 3986 URI reference, every other byte percent-encoded (RFC 8288 puts
the target between ``<`` and ``>``; ``;`` and ``,`` are encoded as well, since lax parsers split
on them). A path or query that needs nothing, the usual case, is returned as it is after one
regular-expression scan.
"""

from __future__ import annotations

import re
from urllib.parse import quote

# RFC 3986 ``pchar`` without ';' and ','; the query also keeps '?' and the escapes it has.
_PATH_SAFE = "/-._~!$&'()*+=:@"
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9/\-._~!$&'()*+=:@]")
_DOTS = {".": "%2E", "..": "%2E%2E"}
_QUERY_UNSAFE = re.compile(rb"%(?![0-9A-Fa-f]{2})|[^A-Za-z0-9/?\-._~!$&'()*+=:@%]")


def path_reference(path: str) -> str:
    """A decoded path (as in the ASGI scope) as a URI path: UTF-8, percent-encoded.

    A character that was sent escaped (``%3E``) is escaped again; a ``%`` of the decoded path
    becomes ``%25``, and a dot segment stays escaped, so the reference names the same resource
    the router saw. Lone surrogates
    (a server that decodes with ``surrogateescape``) go back to the bytes they stood for.
    """
    if _PATH_UNSAFE.search(path) is not None:
        path = quote(path, safe=_PATH_SAFE, encoding="utf-8", errors="surrogateescape")
    if "." in path:
        # A "." or ".." segment (sent as %2e%2e) would be resolved away by the client (RFC
        # 3986 §5.2.4) and name another resource: it stays escaped, as it came.
        path = "/".join(_DOTS.get(segment, segment) for segment in path.split("/"))
    return path


def query_reference(query: bytes) -> str:
    """A raw query string as a URI query: its escapes kept, every other unsafe byte (and a
    ``%`` that starts no escape) percent-encoded."""
    if _QUERY_UNSAFE.search(query) is None:
        return query.decode("ascii")
    return _QUERY_UNSAFE.sub(_escape_byte, query).decode("ascii")


def uri_reference(path: str, query: bytes) -> str:
    """``path?query`` (no ``?`` when the query is empty), both encoded as above."""
    if not query:
        return path_reference(path)
    return path_reference(path) + "?" + query_reference(query)


def _escape_byte(match: re.Match[bytes]) -> bytes:
    return b"%%%02X" % match.group()[0]
