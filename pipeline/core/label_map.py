"""The label map that travels with a model (models/label_map.json), parsed once for evaluate and serving.

Written by the train stage: class names in output-column order, the positive class of a binary
task (None for multi-class), the input geometry the model was trained on (image_size, channels)
and the dataset intensity window for > 8-bit images (None for 8-bit data), and for data.format dicom
the VOI policy its films were decoded with (`dicom_voi`: "header" = a file's own VOI LUT/window,
"dataset" = VOI ignored, the dataset window maps every film), so serving decodes DICOM alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.errors import DataError

FILE_NAME = "label_map.json"
VOI_POLICIES = ("header", "dataset")  # data.dicom.voi


@dataclass(frozen=True)
class LabelMap:
    classes: list[str]
    positive: str | None  # the class scored as positive when the task is binary, else None
    image_size: int | None = None
    channels: int | None = None
    window: list[float] | None = None
    dicom_voi: str = "header"

    @classmethod
    def parse(cls, doc: dict) -> LabelMap:
        """From the JSON mapping; DataError for fewer than 2 classes or a positive class not listed."""
        classes = [str(c) for c in doc.get("classes") or []]
        if len(classes) < 2:
            raise DataError(f"{FILE_NAME} lists fewer than 2 classes; re-run the train stage")
        positive = doc.get("positive")
        if positive is not None and str(positive) not in classes:
            raise DataError(f"{FILE_NAME}: positive class {positive!r} is not one of {classes}")
        binary = positive is not None and len(classes) == 2
        window = doc.get("window")
        voi = doc.get("dicom_voi") or "header"
        if voi not in VOI_POLICIES:
            raise DataError(f"{FILE_NAME}: dicom_voi {voi!r} is not one of {list(VOI_POLICIES)}")
        return cls(
            classes=classes,
            positive=str(positive) if binary else None,
            image_size=int(doc["image_size"]) if doc.get("image_size") is not None else None,
            channels=int(doc["channels"]) if doc.get("channels") is not None else None,
            window=[float(v) for v in window] if window else None,
            dicom_voi=voi,
        )

    @property
    def positive_index(self) -> int | None:
        """Column of the positive class in the model's output (binary tasks), else None."""
        return self.classes.index(self.positive) if self.positive is not None else None

    def geometry(self) -> tuple[int, int]:
        """(image_size, channels) the model takes; DataError when the label map lacks them."""
        if self.image_size is None or self.channels is None:
            raise DataError(f"{FILE_NAME} has no image_size/channels; re-run the train stage")
        return self.image_size, self.channels
