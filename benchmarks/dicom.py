"""DICOM benchmark (not a test): decode fidelity and speed, written to benchmarks/results/dicom.json.

    uv run python benchmarks/dicom.py [--films 1000] [--side 256] [--seed 0] [--repeats 3]

(a) every pydicom bundled file with pixel data: transfer syntax, photometric, max abs difference
    from pydicom's own reference (tests/helpers/dicom_reference.py) or the quarantine reason;
(b) decode speed on --films synthetic films made from ../shared/datasets/kermany-dev (NORMAL and
    PNEUMONIA JPEGs, shrunk to --side px on the long side so 1,000 encode in a minute) re-encoded as
    DICOM with a random MONOCHROME1/2, 8/12/16 BitsStored, uncompressed / RLE / JPEG 2000 lossless
    and a full-range window (as X-ray exports carry): ours (pipeline.core.dicom.decode_dicom, and
    images.decode_raw's uint8 pixels) vs pydicom alone (dcmread + pixel_array + apply_modality_lut +
    apply_voi_lut), from the same bytes in memory, one core, best of --repeats passes. Goal >= 0.7x.
`write_films` is reused to build the DICOM twin of kermany-dev for the stages (docs/data.md#dicom).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import random
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut, apply_voi_lut

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))  # helpers.dicom_films / dicom_reference (test helpers)
from helpers.dicom_films import film  # noqa: E402
from helpers.dicom_reference import bundled_files, compare  # noqa: E402

from pipeline.core import dicom, images  # noqa: E402

log = logging.getLogger("benchmarks.dicom")
KERMANY = HERE.parents[1] / "shared" / "datasets" / "kermany-dev"
RESULT = HERE / "results" / "dicom.json"
GOAL_SPEED = 0.7


def _kermany(n: int, seed: int) -> list[Path]:
    files = sorted(p for p in KERMANY.rglob("*.jpeg"))
    random.Random(seed).shuffle(files)
    return files[:n]


def encode_film(gray: np.ndarray, rng: random.Random, patient: str) -> tuple[bytes, dict]:
    """One 8-bit grey image as a DICOM film with a random depth, polarity and syntax; the window
    maps the stored range back to the 8-bit picture (so every variant shows the same image)."""
    bits = rng.choice((8, 12, 16))
    mono1 = rng.random() < 0.5
    syntax = rng.choice(("raw", "rle", "j2k"))
    top = 2**bits - 1
    values = np.rint(gray.astype(np.float64) * top / 255).astype(np.uint8 if bits == 8 else np.uint16)
    stored = (top - values).astype(values.dtype) if mono1 else values
    photometric = "MONOCHROME1" if mono1 else "MONOCHROME2"
    # LINEAR window with centre (top+1)/2, width top+1: stored 0 -> 0, top -> top (identity)
    data = film(
        stored,
        patient=patient,
        photometric=photometric,
        bits_stored=bits,
        syntax=syntax,
        window=((top + 1) / 2, top + 1),
    )
    return data, {"bits": bits, "photometric": photometric, "syntax": syntax}


def write_films(out: Path, n: int, side: int, seed: int) -> list[dict]:
    """n kermany-dev JPEGs as DICOM films under out/<class>/<stem>.dcm (PatientID = the Kaggle
    patient of the name); returns one dict per film."""
    from pipeline.config import from_dict
    from pipeline.formats import get

    data_cfg = from_dict({"data": {"format": "chest_xray"}}).data
    adapter = get("chest_xray")
    rng = random.Random(seed)
    rows = []
    for src in _kermany(n, seed):
        gray = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE)
        scale = side / max(gray.shape)
        if scale < 1:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        from pathlib import PurePosixPath

        parsed = adapter.parse(PurePosixPath(src.relative_to(KERMANY).as_posix()), data_cfg)
        data, kind = encode_film(gray, rng, parsed.patient_id)
        dest = out / src.parent.name / f"{src.stem}.dcm"
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        rows.append({"path": str(dest), "source": str(src), **kind})
    return rows


def fidelity(films: list[dict], side: int) -> dict:
    """Each film through images.decode_raw vs its source JPEG decoded and shrunk the same way:
    the uint8 pixels the stages see (0 = the DICOM twin trains on the very same pixels)."""
    diffs = []
    for f in films:
        gray = cv2.imread(f["source"], cv2.IMREAD_GRAYSCALE)
        scale = side / max(gray.shape)
        if scale < 1:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ours = images.decode_raw(Path(f["path"]).read_bytes())
        diffs.append(int(np.abs(ours.astype(int) - gray).max()))
    return {"max_abs_diff_uint8": max(diffs), "films_identical": sum(d == 0 for d in diffs)}


def _pydicom_alone(data: bytes) -> np.ndarray:
    ds = pydicom.dcmread(io.BytesIO(data))
    return apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)


def speed(blobs: list[bytes], repeats: int) -> dict:
    """Films per second of each decoder (best of `repeats` passes, interleaved)."""
    runs = {"ours_decode_dicom": dicom.decode_dicom, "ours_decode_raw_uint8": images.decode_raw}
    runs["pydicom_alone"] = _pydicom_alone
    best = dict.fromkeys(runs, float("inf"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            for name, fn in runs.items():
                start = time.perf_counter()
                for b in blobs:
                    fn(b)
                best[name] = min(best[name], time.perf_counter() - start)
    rate = {k: round(len(blobs) / v, 1) for k, v in best.items()}
    ratio = round(rate["ours_decode_dicom"] / rate["pydicom_alone"], 3)
    return {"films_per_s": rate, "ours_vs_pydicom": ratio, "goal": GOAL_SPEED, "met": ratio >= GOAL_SPEED}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--films", type=int, default=1000)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cv2.setNumThreads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = [compare(f) for f in bundled_files()]
    out = HERE / "out" / "dicom_films"
    start = time.perf_counter()
    films = write_films(out, args.films, args.side, args.seed)
    made = time.perf_counter() - start
    blobs = [Path(f["path"]).read_bytes() for f in films]
    mix = {
        k: {v: sum(f[k] == v for f in films) for v in sorted({f[k] for f in films})}
        for k in ("bits", "photometric", "syntax")
    }
    result = {
        "reference": {"tolerance": "1e-5 x value range", "files": table},
        "fidelity_to_source_jpeg": fidelity(films, args.side),
        "speed": {
            "films": len(blobs),
            "side": args.side,
            "mix": mix,
            "encode_s": round(made, 1),
            **speed(blobs, args.repeats),
        },
    }
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'file':44} {'syntax':24} {'photometric':14} result")
    for r in table:
        what = (
            f"max abs diff {r['max_abs_diff']:.3g} (range {r['range']:.4g})"
            if "max_abs_diff" in r
            else r["quarantine"][:70]
        )
        print(f"{r['file'][:44]:44} {str(r['syntax'])[:24]:24} {str(r['photometric'])[:14]:14} {what}")
    s = result["speed"]
    print(f"\nfilms vs their source JPEG (uint8 pixels the stages read): {result['fidelity_to_source_jpeg']}")
    print(f"\n{s['films']} films ({args.side} px, {mix}):")
    for name, rate in s["films_per_s"].items():
        print(f"  {name:24} {rate:8.1f} films/s")
    print(
        f"  ours / pydicom alone = {s['ours_vs_pydicom']}x (goal >= {GOAL_SPEED}x): {'met' if s['met'] else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
