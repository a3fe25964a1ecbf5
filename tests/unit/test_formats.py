"""Format adapters on the published naming conventions (names only; the stage tests write files)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from pipeline.config import FORMATS, from_dict
from pipeline.core.errors import ConfigError, DataError
from pipeline.formats import ADAPTERS, get
from pipeline.formats.base import RawFile


def regroup(fmt: str, rels: list[str], **data):
    files = [RawFile(f"data/raw/{r}", PurePosixPath(r), 10, f"sha{i}") for i, r in enumerate(rels)]
    cfg = from_dict({"data": {"format": fmt, **data}})
    result = get(fmt).regroup(files, cfg.data, Path("unused"))
    by_name = {PurePosixPath(r["path"]).name: r for r in result.rows}
    return result, by_name


def test_registry_covers_every_configured_format():
    assert set(ADAPTERS) == set(FORMATS)
    with pytest.raises(ConfigError, match="data.format 'nifti' is unknown"):
        get("nifti")


def test_idc_reads_patient_xy_label_and_tolerates_the_kaggle_top_folder():
    result, rows = regroup(
        "idc",
        [
            "10253/1/10253_idx5_x1001_y1051_class1.png",
            "IDC_regular_ps50_idx5/8863/0/8863_idx5_x51_y1251_class0.png",
            "10253/0/10253_idx5_x1_y2_class1.png",  # folder 0, name class1
            "10253/1/9999_idx5_x1_y2_class1.png",  # patient folder disagrees
            "10253/1/10253_x1_y2_class1.png",  # broken name
            "10253/1/notes.txt",
        ],
    )
    assert result.classes == ["non_idc", "idc"] and result.positive == "idc"
    good = rows["10253_idx5_x1001_y1051_class1.png"]
    assert (good["label"], good["class_name"], good["patient_id"], good["x"], good["y"]) == (
        1,
        "idc",
        "10253",
        1001,
        1051,
    )
    assert rows["8863_idx5_x51_y1251_class0.png"]["class_name"] == "non_idc"
    assert "folder label 0 disagrees with class1" in rows["10253_idx5_x1_y2_class1.png"]["format_error"]
    assert "patient folder 10253" in rows["9999_idx5_x1_y2_class1.png"]["format_error"]
    assert "does not match" in rows["10253_x1_y2_class1.png"]["format_error"]
    assert sum(result.ignored.values()) == 1 and "notes.txt" not in rows


BH = "BreaKHis_v1/histology_slides/breast"


def test_breakhis_nested_and_flat_with_codes_magnification_and_patient():
    result, rows = regroup(
        "breakhis",
        [
            f"{BH}/benign/SOB/adenosis/SOB_B_A_14-22549AB/40X/SOB_B_A-14-22549AB-40-001.png",
            f"{BH}/malignant/SOB/ductal_carcinoma/SOB_M_DC_14-13412/100X/SOB_M_DC-14-13412-100-002.png",
            f"{BH}/malignant/SOB/lobular_carcinoma/SOB_M_LC_14-13412/100X/SOB_M_LC-14-13412-100-003.png",
            "flat/SOB_M_PC-15-190EF-400-017.png",
            "flat/SOB_B_PT-14-21998AB-200-005.png",  # 200X is not selected below
            f"{BH}/count_files.sh",
        ],
        magnifications=[40, 100, 400],
    )
    assert result.classes == ["benign", "malignant"] and result.positive == "malignant"
    a = rows["SOB_B_A-14-22549AB-40-001.png"]
    assert (a["label"], a["patient_id"], a["tumour_type"], a["magnification"]) == (
        0,
        "14-22549AB",
        "adenosis",
        40,
    )
    flat = rows["SOB_M_PC-15-190EF-400-017.png"]
    assert (flat["class_name"], flat["tumour_type"], flat["patient_id"]) == (
        "malignant",
        "papillary_carcinoma",
        "15-190EF",
    )
    assert "SOB_B_PT-14-21998AB-200-005.png" not in rows
    assert result.ignored["magnification 200X not in data.magnifications"] == 1
    assert result.notes["slides_with_several_tumour_types"] == {
        "14-13412": ["ductal_carcinoma", "lobular_carcinoma"]
    }


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        (f"{BH}/malignant/SOB/ductal_carcinoma/SOB_M_DC_14-1/40X/SOB_M_DC-14-1-40-001.png", None),
        (f"{BH}/benign/SOB/adenosis/SOB_B_A_14-1/40X/SOB_M_A-14-1-40-001.png", "adenosis contradicts M"),
        (
            f"{BH}/malignant/SOB/fibroadenoma/SOB_B_F_14-1/40X/SOB_B_F-14-1-40-001.png",
            "folder malignant/ but the name says benign",
        ),
        (
            f"{BH}/benign/SOB/adenosis/SOB_B_F_14-2/40X/SOB_B_F-14-2-40-001.png",
            "folder adenosis/ but the name says fibroadenoma",
        ),
        (
            f"{BH}/benign/SOB/adenosis/SOB_B_A_14-1/100X/SOB_B_A-14-1-40-001.png",
            "folder 100X/ but the name says 40X",
        ),
        (f"{BH}/benign/SOB/adenosis/SOB_B_A_14-9/40X/SOB_B_A-14-1-40-001.png", "slide folder SOB_B_A_14-9/"),
        ("SOB_B_XX-14-1-40-001.png", "unknown tumour type code 'XX'"),
        ("B_A-14-1-40-001.png", "does not match"),
    ],
)
def test_breakhis_flags_names_that_disagree_with_their_folders(rel, reason):
    _, rows = regroup("breakhis", [rel])
    error = rows[PurePosixPath(rel).name]["format_error"]
    assert error is None if reason is None else reason in error


def test_chest_xray_binary_patients_splits_and_junk():
    result, rows = regroup(
        "chest_xray",
        [
            "chest_xray/train/NORMAL/IM-0115-0001.jpeg",
            "chest_xray/test/NORMAL/NORMAL2-IM-1427-0001.jpeg",
            "chest_xray/val/PNEUMONIA/person1946_bacteria_4874.jpeg",
            "PNEUMONIA/person3_virus_15.jpeg",
            "chest_xray/train/NORMAL/person9_virus_1.jpeg",  # pneumonia name in NORMAL/
            "chest_xray/train/PNEUMONIA/scan.jpeg",
            "__MACOSX/chest_xray/train/NORMAL/._IM-0115-0001.jpeg",
            "chest_xray/.DS_Store",
        ],
    )
    assert result.classes == ["NORMAL", "PNEUMONIA"] and result.positive == "PNEUMONIA"
    assert sum(result.ignored.values()) == 2
    n = rows["IM-0115-0001.jpeg"]
    assert (n["label"], n["patient_id"], n["source_split"]) == (0, "IM-0115", "train")
    assert rows["NORMAL2-IM-1427-0001.jpeg"]["patient_id"] == "NORMAL2-IM-1427"
    p = rows["person1946_bacteria_4874.jpeg"]
    assert (p["label"], p["patient_id"], p["source_split"], p["pathogen"]) == (
        1,
        "person1946",
        "val",
        "bacteria",
    )
    assert rows["person3_virus_15.jpeg"]["source_split"] is None
    assert "disagrees" in rows["person9_virus_1.jpeg"]["format_error"]
    assert "matches neither" in rows["scan.jpeg"]["format_error"]


def test_chest_xray_three_classes():
    result, rows = regroup(
        "chest_xray",
        ["NORMAL/IM-0001-0001.jpeg", "PNEUMONIA/person1_bacteria_1.jpeg", "PNEUMONIA/person1_virus_6.jpeg"],
        classes="three",
    )
    assert result.classes == ["NORMAL", "BACTERIA", "VIRUS"] and result.positive is None
    assert [
        rows[n]["label"] for n in ("IM-0001-0001.jpeg", "person1_bacteria_1.jpeg", "person1_virus_6.jpeg")
    ] == [0, 1, 2]
    assert (
        rows["person1_virus_6.jpeg"]["patient_id"]
        == rows["person1_bacteria_1.jpeg"]["patient_id"]
        == "person1"
    )


def test_tb_sites_labels_and_ignored_masks_and_readings():
    result, rows = regroup(
        "tb",
        [
            "MontgomerySet/CXR_png/MCUCXR_0001_0.png",
            "MontgomerySet/ManualMask/leftMask/MCUCXR_0001_0.png",
            "MontgomerySet/ClinicalReadings/MCUCXR_0001_0.txt",
            "ChinaSet_AllFiles/CXR_png/CHNCXR_0662_1.png",
            "ChinaSet_AllFiles/CXR_png/CHNCXR_0663_2.png",
        ],
    )
    assert result.classes == ["normal", "tuberculosis"] and result.positive == "tuberculosis"
    assert len(result.rows) == 3 and result.ignored["lung mask"] == 1
    m, c = rows["MCUCXR_0001_0.png"], rows["CHNCXR_0662_1.png"]
    assert (m["label"], m["patient_id"], m["site"]) == (0, "MCUCXR_0001", "montgomery")
    assert (c["class_name"], c["patient_id"], c["site"]) == ("tuberculosis", "CHNCXR_0662", "shenzhen")
    assert rows["CHNCXR_0663_2.png"]["format_error"]


def test_imagefolder_sorted_classes_wrapper_folder_and_patient_regex():
    rels = ["mydata/tumor/p01_a.png", "mydata/normal/p02_b.png", "mydata/normal/sub/p03_c.png"]
    result, rows = regroup("imagefolder", rels, patient_regex=r"^(?P<patient>p\d+)_")
    assert result.classes == ["normal", "tumor"] and result.positive == "tumor"
    assert (rows["p01_a.png"]["label"], rows["p01_a.png"]["patient_id"]) == (1, "p01")
    assert rows["p03_c.png"]["class_name"] == "normal"
    _, rows = regroup("imagefolder", ["a/x1.png", "b/y2.png", "c/z3.png", "loose.png"])
    assert rows["x1.png"]["patient_id"] == "x1" and rows["z3.png"]["label"] == 2
    assert "not inside a <class>/ folder" in rows["loose.png"]["format_error"]


def test_imagefolder_patient_regex_errors_are_one_line():
    with pytest.raises(DataError, match=r"does not match 1 of 2 file names, e.g. 'other.png'"):
        regroup("imagefolder", ["a/p1_x.png", "b/other.png"], patient_regex=r"(?P<patient>p\d+)_")
    with pytest.raises(ConfigError, match="needs a named group"):
        regroup("imagefolder", ["a/p1_x.png"], patient_regex=r"p\d+")
    with pytest.raises(ConfigError, match="not a valid regex"):
        regroup("imagefolder", ["a/p1_x.png"], patient_regex=r"(?P<patient>p\d+")
