"""Credentials never leave the process: redact URL user info wherever a source, endpoint or
tracking URI is printed, logged or stored, and recognise it at config load.

User info is whatever stands between `scheme://` and an `@` when the authority holds the `@`
(`s3://KEY:SECRET@bucket`), or when a `:` comes before the `@` even past a `/` — AWS secret keys
contain `/` and `+` and are often pasted unescaped (`s3://AKIA...:ab/c+d@bucket/prefix`). An `@`
later in an S3 key (`s3://bucket/user@example.org/`) is not user info.
"""

from __future__ import annotations

import logging
import re

_STOP = r"\s\"'<>"
USERINFO = re.compile(
    rf"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/@{_STOP}]*@|[^@/{_STOP}]*:[^@{_STOP}]*@)"
)


def has_userinfo(value: str) -> bool:
    """True when value holds a URL with user info (credentials)."""
    return bool(USERINFO.search(value))


def redact(value: str) -> str:
    """Replace the user info of every URL inside value with ***."""
    return USERINFO.sub(r"\g<scheme>***@", value)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts URL user info in every record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_filter() -> None:
    """Redact every handler of the root logger (call after logging.basicConfig)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
