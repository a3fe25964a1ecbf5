"""The ingest stage: raw manifest contents, no-op re-ingest, one-line errors without partial outputs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline import config
from pipeline.cli import main
from pipeline.core import manifest
from pipeline.core.errors import ConfigError
from pipeline.sources import STATE_NAME, source_kind
from pipeline.stages import ingest

TINY_SAMPLE = {"patients": 3, "patches_per_patient": 12, "seed": 2}
OUTS = {"raw": Path("data/raw"), "manifest": Path("data/manifests/raw.csv")}


def cfg_with(source: str = "sample") -> config.Config:
    return config.from_dict({"data": {"source": source, "sample": TINY_SAMPLE}})


def cli(params: dict, tmp: Path) -> int:
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    argv = ["stage", "ingest", "-o", "raw=data/raw", "-o", "manifest=data/manifests/raw.csv"]
    return main([*argv, "--params", str(tmp / "params.yaml")])


def test_manifest_lists_every_image_relative_to_cwd(in_tmp):
    summary = ingest.run(cfg_with(), {}, OUTS)
    df = manifest.read(OUTS["manifest"], required=manifest.RAW_COLUMNS)
    assert list(df.columns) == manifest.RAW_COLUMNS
    assert df["path"].tolist() == sorted(df["path"])
    on_disk = sorted(p.as_posix() for p in Path("data/raw").rglob("*.png"))
    assert df["path"].tolist() == on_disk and summary["files"] == len(on_disk) > 0
    assert not df["path"].str.contains(STATE_NAME, regex=False).any()
    assert df["path"].str.match(r"^data/raw/\d{5}/[01]/\d{5}_idx5_x\d+_y\d+_class[01]\.png$").all()
    for row in df.itertuples():
        data = Path(row.path).read_bytes()
        assert row.bytes == len(data) and row.sha256 == hashlib.sha256(data).hexdigest()


def test_reingest_is_a_noop_with_identical_outputs(in_tmp):
    ingest.run(cfg_with(), {}, OUTS)
    first_manifest = OUTS["manifest"].read_bytes()
    first_state = (OUTS["raw"] / STATE_NAME).read_bytes()
    summary = ingest.run(cfg_with(), {}, OUTS)
    assert summary["copied"] == 0 and summary["deleted"] == 0
    assert OUTS["manifest"].read_bytes() == first_manifest
    assert (OUTS["raw"] / STATE_NAME).read_bytes() == first_state


def test_local_source_with_absolute_output_paths(in_tmp):
    src = in_tmp / "incoming" / "NORMAL"
    src.mkdir(parents=True)
    img = np.full((10, 12), 128, np.uint8)
    cv2.imwrite(str(src / "IM-0001-0001.jpeg"), img)
    outs = {"raw": in_tmp / "data/raw", "manifest": in_tmp / "data/manifests/raw.csv"}
    ingest.run(cfg_with(str(in_tmp / "incoming")), {}, outs)
    assert manifest.read(outs["manifest"])["path"].tolist() == ["data/raw/NORMAL/IM-0001-0001.jpeg"]


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("sample", "sample"),
        ("s3://b/p", "s3"),
        ("/d/x.tar.gz", "archive"),
        ("a.TGZ", "archive"),
        ("/d", "local"),
    ],
)
def test_source_kind(source, kind):
    assert source_kind(source) == kind


def test_unknown_scheme_is_a_config_error():
    with pytest.raises(ConfigError, match="unsupported scheme 'ftp://'"):
        source_kind("ftp://example.org/data")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("missing_dir", "does not exist"),
        ("ftp://host/data", "unsupported scheme"),
        ("gone.zip", "does not exist"),
    ],
)
def test_cli_error_is_one_line_and_leaves_no_outputs(in_tmp, capsys, source, message):
    assert cli({"data": {"source": source}}, in_tmp) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medpipe: error:") and message in err and "\n" not in err
    assert not Path("data/raw").exists() and not Path("data/manifests/raw.csv").exists()
    assert not list(Path(".").glob("data/.raw.staging-*"))


def test_failed_reingest_keeps_previous_good_outputs(in_tmp, capsys):
    assert cli({"data": {"source": "sample", "sample": TINY_SAMPLE}}, in_tmp) == 0
    before = {p: p.read_bytes() for p in Path("data").rglob("*") if p.is_file()}
    Path("empty").mkdir()
    assert cli({"data": {"source": "empty"}}, in_tmp) == 2
    assert "is empty" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in Path("data").rglob("*") if p.is_file()} == before
