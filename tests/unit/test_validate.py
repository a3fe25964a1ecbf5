"""validate stage: outputs, decode pass, header parsing, GX suite, CLI (inputs from helpers.validate_inputs)."""

from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.validate_inputs import (
    add_file,
    encode,
    make_valid,
    patch,
    run_validate,
    write_inputs,
)

from pipeline import config
from pipeline.cli import main
from pipeline.core import manifest
from pipeline.core.errors import ValidationFailed
from pipeline.stages import validate
from pipeline.validation import decode, headers
from pipeline.validation.checks import check_file, read_file
from pipeline.validation.decode import Limits, chunk_size, decode_pass, pick_pool


def test_clean_dataset_passes_and_writes_every_output(in_tmp: Path) -> None:
    rows = make_valid(12)
    summary, validated, quarantine = run_validate(rows)
    assert list(validated.columns) == [*manifest.CANONICAL_COLUMNS, *manifest.DECODED_COLUMNS]
    assert validated["path"].tolist() == [r["path"] for r in rows]
    assert set(validated["height"]) == {50} and set(validated["width"]) == {50}
    assert set(validated["channels"]) == {3} and set(validated["dtype"]) == {"uint8"}
    assert quarantine.empty and list(quarantine.columns) == ["path", "reason", "detail"]
    assert summary["n_rows"] == summary["n_valid"] == 12 and summary["n_quarantined"] == 0
    assert summary["classes"] == {"0": 6, "1": 6} and summary["n_patients"] == 3
    assert summary["gx_success"] is True and summary["n_expectations"] >= 12
    assert summary["decode_img_per_s"] > 0
    metrics = json.loads((in_tmp / "reports/validation/metrics.json").read_text())  # what DVC compares
    assert metrics == {
        "n_rows": 12,
        "n_valid": 12,
        "n_quarantined": 0,
        "quarantine_fraction": 0.0,
        "n_patients": 3,
        "n_classes": 2,
        "n_expectations": summary["n_expectations"],
        "gx_success": 1,
    }
    docs = in_tmp / "reports/validation/data_docs"
    assert (docs / "index.html").is_file()
    from pipeline.validation.offline_docs import EXTERNAL

    pages = sorted(docs.rglob("*.html"))
    assert len(pages) >= 3  # index, suite, validation result
    for page in pages:  # usable offline: no CDN script/style, no tracking image with the context id
        text = page.read_text()
        assert not EXTERNAL.findall(text), (page, EXTERNAL.findall(text)[:3])
        assert "dataContextId" not in text and "static/vendor/jquery.min.js" in text
        for ref in re.findall(r'(?:src|href)="([^"#]+\.(?:js|css|png))"', text):
            assert (page.parent / ref).is_file(), (page, ref)  # every local asset resolves
    assert json.loads((docs / "validation_result.json").read_text())["success"] is True


def test_quarantine_counts_reasons_and_keeps_first_duplicate(in_tmp: Path) -> None:
    rows = make_valid(12)
    copy = add_file(Path(rows[3]["path"]).read_bytes(), "10_idx5_x9000_y0_class1.png", 1, "10", 9000)
    rows += [copy, add_file(b"", "11_idx5_x9050_y0_class0.png", 0, "11", 9050)]
    summary, validated, quarantine = run_validate(rows, max_quarantine_fraction=0.5)
    assert summary["reasons"]["duplicate"] == 1 and summary["reasons"]["zero-byte"] == 1
    assert summary["n_quarantined"] == 2 and summary["n_valid"] == 12
    dup = quarantine[quarantine["reason"] == "duplicate"].iloc[0]
    assert dup["path"] == copy["path"] and dup["detail"] == f"same bytes as {rows[3]['path']}"
    assert rows[3]["path"] in set(validated["path"])


def test_threads_and_processes_give_identical_checks(in_tmp: Path) -> None:
    rows = make_valid(6) + [add_file(b"junk", "x.png"), add_file(encode(patch(1, (4, 50, 3))), "small.png")]
    paths, shas = [r["path"] for r in rows], [r["sha256"] for r in rows]
    limits = Limits(min_side=8, max_side=8192, max_pixels=10**8)
    threads, _ = decode_pass(paths, shas, limits, workers=2, kind="thread")
    processes, _ = decode_pass(paths, shas, limits, workers=2, kind="process")
    assert threads == processes
    assert threads["reason"] == [""] * 6 + ["not-an-image", "too-small"]
    assert threads["sha256"][:6] == shas[:6] and threads["height"][7] == 4


def test_many_chunks_keep_input_order_in_both_pools(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # one file per task: results of 9 tasks from 2 forked workers (which inherit the job) come back in order
    monkeypatch.setattr(decode, "MIN_CHUNK", 1)
    rows = make_valid(5) + [
        add_file(b"", "empty.png"),
        add_file(encode(patch(2, (50, 50), np.uint16)), "gray16.png"),
    ]
    rows += [add_file(encode(patch(3, (4, 50, 3)), ".jpg"), "small.jpg"), add_file(b"%PDF-1.4", "pdf.png")]
    paths, shas = [r["path"] for r in rows], [r["sha256"] for r in rows]
    limits = Limits(min_side=8, max_side=8192, max_pixels=10**8)
    assert chunk_size(len(paths), 2) == 1
    expected = [check_file(p, s, limits) for p, s in zip(paths, shas, strict=True)]
    for kind in ("thread", "process"):
        columns, rate = decode_pass(paths, shas, limits, workers=2, kind=kind)
        assert list(zip(*columns.values(), strict=True)) == [tuple(c) for c in expected], kind
        assert rate > 0
    assert [c.reason for c in expected[5:]] == ["zero-byte", "", "too-small", "not-an-image"]
    assert expected[6].dtype == "uint16" and expected[6].channels == 1


def test_chunk_size_grows_with_the_run_within_bounds() -> None:
    assert chunk_size(10, 2) == decode.MIN_CHUNK
    assert chunk_size(50_000, 2) == 1563  # 16 tasks per worker
    assert chunk_size(277_524, 2) == decode.MAX_CHUNK
    assert chunk_size(277_524, 64) == 272


def test_read_file_returns_every_byte_and_raises_oserror(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000
    (tmp_path / "f.bin").write_bytes(data)
    (tmp_path / "empty").write_bytes(b"")
    assert read_file(str(tmp_path / "f.bin")) == data
    assert read_file(str(tmp_path / "empty")) == b""
    with pytest.raises(IsADirectoryError):
        read_file(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        read_file(str(tmp_path / "missing"))


def test_decode_pass_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 paths but 1 expected"):
        decode_pass(["a", "b"], [None], Limits(8, 8192, 10**8))


def test_auto_pool_forks_only_for_many_files(monkeypatch) -> None:
    # a CLI run: the main thread alone (earlier tests in this process may leave live threads behind)
    monkeypatch.setattr(threading, "enumerate", lambda: [threading.main_thread()])
    assert pick_pool("auto", 10) == "thread"
    assert pick_pool("auto", 10**6) == "process"
    monkeypatch.undo()
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(pick_pool("auto", 10**6)))
    worker.start()
    worker.join()
    assert result == ["thread"]  # not the main thread (e.g. a Prefect task): never fork
    assert pick_pool("thread", 10**6) == "thread" and pick_pool("process", 1) == "process"


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tiff", ".webp", ".gif"])
@pytest.mark.parametrize("shape", [(37, 91, 3), (64, 20, 3)])
def test_header_dimensions_match_decoded_size(ext: str, shape: tuple[int, int, int]) -> None:
    data = encode(patch(0, shape), ext)
    fmt = headers.sniff(data)
    assert fmt == {".jpg": "jpeg", ".tiff": "tiff"}.get(ext, ext[1:])
    assert headers.dimensions(data, fmt) == (shape[1], shape[0])
    assert not headers.is_truncated(data, fmt)


def test_lossless_webp_and_rgba_header_dimensions() -> None:
    lossless = cv2.imencode(".webp", patch(0, (30, 20, 4)), [cv2.IMWRITE_WEBP_QUALITY, 101])[1].tobytes()
    assert headers.dimensions(lossless, "webp") == (20, 30)
    assert headers.png_channels(encode(patch(0, (30, 20, 4)))) == 4
    assert headers.png_channels(encode(patch(0, (30, 20)))) == 1


def test_duplicate_patch_coordinates_fail_the_gx_suite(in_tmp: Path) -> None:
    rows = make_valid(6)
    rows[4]["patient_id"], rows[4]["x"] = rows[2]["patient_id"], rows[2]["x"]  # different pixels, same spot
    inputs, outputs = write_inputs(rows)
    with pytest.raises(ValidationFailed) as err:
        validate.run(config.from_dict({}), inputs, outputs)
    msg = str(err.value)
    assert msg.startswith(
        "1 of 14 data expectations failed: expect_compound_columns_to_be_unique(patient_id, x, y)"
    )
    assert f'"x": {rows[2]["x"]}' in msg
    assert not any(p.exists() for p in outputs.values())


def test_a_class_without_valid_images_fails_the_gx_suite(in_tmp: Path) -> None:
    rows = [r for r in make_valid(8) if r["label"] == 0]
    inputs, outputs = write_inputs(rows)
    with pytest.raises(ValidationFailed, match=r"expect_column_distinct_values_to_contain_set\(class_name\)"):
        validate.run(config.from_dict({}), inputs, outputs)


def test_cli_runs_the_stage_and_removes_outputs_on_failure(in_tmp: Path, capsys) -> None:
    rows = make_valid(6)
    inputs, outputs = write_inputs(rows)
    Path("params.yaml").write_text("validate:\n  workers: 1\n")
    args = ["stage", "validate", "--params", "params.yaml"]
    args += [f"-i{k}={v}" for k, v in inputs.items()] + [f"-o{k}={v}" for k, v in outputs.items()]
    assert main(args) == 0
    assert all(p.exists() for p in outputs.values())
    for p in outputs.values():
        p.unlink() if p.is_file() else shutil.rmtree(p)
    Path(rows[0]["path"]).write_bytes(b"")  # 1 of 6 bad > 1 % limit
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("medpipe: error: 1 of 6 images quarantined (16.7%)")
    assert not any(p.exists() for p in outputs.values())


def test_rows_all_rejected_before_decoding_still_end_in_one_clear_error(in_tmp: Path) -> None:
    rows = make_valid(3)
    for row in rows:
        row["patient_id"] = None
    inputs, outputs = write_inputs(rows)
    cfg = config.from_dict({"validate": {"max_quarantine_fraction": 1.0}})
    with pytest.raises(ValidationFailed, match=r"^2 of 13 data expectations failed: expect_table_row_count"):
        validate.run(cfg, inputs, outputs)
