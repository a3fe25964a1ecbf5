"""Credentials never in params, always redacted, in process.

The planted-secret scan through `dvc repro`, MLflow and `medpipe lineage` is in
tests/e2e/test_bad_input_sources_e2e.py.
"""

from __future__ import annotations

import logging

import pytest

from pipeline import config
from pipeline.cli import main
from pipeline.core.errors import ConfigError
from pipeline.core.provenance import flat_params
from pipeline.core.redact import RedactingFilter, redact

SECRET = "wJalr/XUtnFEMI+K7MDENG/bPxRfiCY"  # '/' and '+' as real AWS secret keys have


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix", "s3://***@bucket/prefix"),
        (f"http://minio:{SECRET}@127.0.0.1:9000", "http://***@127.0.0.1:9000"),
        ("https://user:p%2Fss@host/x", "https://***@host/x"),
        ("s3://token@bucket/x", "s3://***@bucket/x"),
        (
            f"error at s3://AKIA:{SECRET}@b/p and http://u:{SECRET}@h/",
            "error at s3://***@b/p and http://***@h/",
        ),
        ("s3://bucket/user@example.org/scans/", "s3://bucket/user@example.org/scans/"),  # an '@' in a key
        ("http://127.0.0.1:9000", "http://127.0.0.1:9000"),
        ('{"a":"s3://b/x","b":"u:p@h"}', '{"a":"s3://b/x","b":"u:p@h"}'),
    ],
)
def test_redact(value, expected):
    assert redact(value) == expected


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"data": {"source": f"s3://AKIAEXAMPLE:{SECRET}@bucket/prefix"}}, "data.source"),
        ({"data": {"s3_endpoint_url": f"http://minio:{SECRET}@127.0.0.1:9000"}}, "data.s3_endpoint_url"),
        ({"registry": {"tracking_uri": f"https://bob:{SECRET}@mlflow.example.org"}}, "registry.tracking_uri"),
        ({"registry": {"artifact_uri": f"s3://AKIA:{SECRET}@bucket/mlflow"}}, "registry.artifact_uri"),
    ],
)
def test_user_info_is_refused_at_config_load_without_echoing_it(params, key):
    with pytest.raises(ConfigError) as err:
        config.from_dict(params)
    message = str(err.value)
    assert message.startswith(f"params: '{key}' holds credentials (") and "***@" in message
    assert SECRET not in message and "/XUtn" not in message and "\n" not in message
    assert ("AWS credential chain" in message) != (key == "registry.tracking_uri")


def test_plain_urls_load_and_params_are_redacted_for_mlflow():
    cfg = config.from_dict(
        {"data": {"source": "s3://bucket/user@example.org/", "s3_endpoint_url": "http://h:9"}}
    )
    assert flat_params(cfg)["data.source"] == "s3://bucket/user@example.org/"


def test_cli_error_and_log_lines_are_redacted(in_tmp, capsys):
    (in_tmp / "params.yaml").write_text(f"data:\n  source: s3://AKIA:{SECRET}@bucket/p\n")
    argv = ["stage", "ingest", "-o", "raw=data/raw", "-o", "manifest=m.csv", "--params", "params.yaml"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert SECRET not in err and err.count("\n") == 1 and "s3://***@bucket/p" in err
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "fetching %s", (f"s3://K:{SECRET}@b/p",), None)
    assert RedactingFilter().filter(record) and record.getMessage() == "fetching s3://***@b/p"
