"""What an image-level split (split.allow_image_level) means, in the words every reader shows: the
split stage (reports/split.json), the report and model card, and registered.html."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config.schema import Config

IMAGE_LEVEL_WARNING = (
    "Split by image, not by patient (split.allow_image_level: true): images of the same patient may be "
    "in train and test, so the test metrics can be optimistic."
)


def image_level_warning(cfg: Config) -> str | None:
    """The warning when split.allow_image_level is set (the split stage refuses it on data with
    patients enough, so a model trained under it was split by image), else None."""
    return IMAGE_LEVEL_WARNING if cfg.split.allow_image_level else None
