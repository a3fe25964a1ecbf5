"""Keyed pseudonyms for patient identifiers: no PHI value is ever written by the pipeline.

Patient ids read from DICOM headers (PatientID) or from a label table's patient column are replaced
at regroup by `pseudonym(value)`: "P" + the first 20 hex digits (80 bits) of HMAC-SHA256(key, value).
The same key gives the same pseudonym for the same patient on every run and machine, so splits stay
patient-grouped and reproducible; without the key nobody can test a guessed MRN against them (a plain
hash of a medical record number is reversed by trying every number).

The key lives outside git, first found of:
  1. the environment variable MEDPIPE_PSEUDONYM_KEY (any string of >= 16 characters);
  2. the file .medpipe/pseudonym.key below the working directory (git-ignored, mode 0600).
With neither, `ensure_key()` creates the file with 32 random bytes and says so in one warning line:
back it up with the data, not in git; another key gives every patient another pseudonym.

`key_id()` (HMAC of a fixed text) identifies the key in summaries without revealing it, so a run made
with another key is visible in the regroup summary and lineage.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pipeline.core.errors import ConfigError

log = logging.getLogger(__name__)

KEY_ENV = "MEDPIPE_PSEUDONYM_KEY"
KEY_FILE = Path(".medpipe") / "pseudonym.key"
MIN_KEY_CHARS = 16
PREFIX = "P"
DIGITS = 20


def _read_key() -> bytes | None:
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if len(env.strip()) < MIN_KEY_CHARS:
            raise ConfigError(f"{KEY_ENV} is shorter than {MIN_KEY_CHARS} characters; use a random key")
        return env.strip().encode()
    if KEY_FILE.is_file():
        key = KEY_FILE.read_text().strip()
        if len(key) < MIN_KEY_CHARS:
            raise ConfigError(f"{KEY_FILE} holds fewer than {MIN_KEY_CHARS} characters; use a random key")
        return key.encode()
    return None


def ensure_key() -> bytes:
    """The pseudonym key; creates .medpipe/pseudonym.key (one warning line) when none is set."""
    key = _read_key()
    if key is not None:
        return key
    KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    gitignore = KEY_FILE.parent / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text("*\n")  # the folder never enters git, whatever the project's .gitignore says
    fd = os.open(KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    log.warning(
        "no pseudonym key (%s or %s): created %s; keep it with the data and out of git "
        "(another key gives every patient another pseudonym), see docs/data.md#pseudonyms",
        KEY_ENV,
        KEY_FILE,
        KEY_FILE,
    )
    _key.cache_clear()
    return KEY_FILE.read_text().strip().encode()


@lru_cache(maxsize=1)
def _key() -> bytes:
    return ensure_key()


def pseudonym(value: object, key: bytes | None = None) -> str:
    """The keyed pseudonym of one identifier (surrounding whitespace ignored)."""
    text = str(value).strip()
    if not text:
        raise ValueError("an empty patient identifier has no pseudonym")
    digest = hmac.new(key if key is not None else _key(), text.encode("utf-8"), hashlib.sha256)
    return PREFIX + digest.hexdigest()[:DIGITS]


def key_id(key: bytes | None = None) -> str:
    """A short public fingerprint of the key (not the key, not reversible)."""
    digest = hmac.new(key if key is not None else _key(), b"medpipe pseudonym key id", hashlib.sha256)
    return digest.hexdigest()[:12]
