"""Keyed patient pseudonyms (pipeline.core.pseudonym)."""

from __future__ import annotations

import logging
import stat

import pytest

from pipeline.core import pseudonym as ps
from pipeline.core.errors import ConfigError


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ps.KEY_ENV, raising=False)
    ps._key.cache_clear()
    yield
    ps._key.cache_clear()


def test_same_key_same_pseudonym_other_key_other():
    a = ps.pseudonym("MRN-0042", b"k" * 32)
    assert a == ps.pseudonym(" MRN-0042 ", b"k" * 32)
    assert a != ps.pseudonym("MRN-0042", b"j" * 32)
    assert a != ps.pseudonym("MRN-0043", b"k" * 32)
    assert a.startswith("P") and len(a) == 1 + ps.DIGITS and "0042" not in a


def test_missing_key_creates_a_private_ignored_file_once(caplog):
    with caplog.at_level(logging.WARNING):
        first = ps.pseudonym("Doe^Jane")
        second = ps.pseudonym("Doe^Jane")
    assert first == second
    assert stat.S_IMODE(ps.KEY_FILE.stat().st_mode) == 0o600
    assert (ps.KEY_FILE.parent / ".gitignore").read_text() == "*\n"
    assert len([r for r in caplog.records if "pseudonym key" in r.getMessage()]) == 1
    ps._key.cache_clear()
    assert ps.pseudonym("Doe^Jane") == first  # read back from the file, not a new key


def test_env_key_wins_and_short_keys_are_refused(monkeypatch):
    monkeypatch.setenv(ps.KEY_ENV, "x" * 20)
    assert ps.pseudonym("id1") == ps.pseudonym("id1", b"x" * 20)
    assert not ps.KEY_FILE.exists()
    monkeypatch.setenv(ps.KEY_ENV, "short")
    ps._key.cache_clear()
    with pytest.raises(ConfigError, match="shorter than 16"):
        ps.pseudonym("id1")


def test_key_id_names_the_key_without_revealing_it():
    assert ps.key_id(b"a" * 32) != ps.key_id(b"b" * 32)
    assert "a" * 8 not in ps.key_id(b"a" * 32)


def test_empty_identifier_has_no_pseudonym():
    with pytest.raises(ValueError):
        ps.pseudonym("  ", b"k" * 32)
