"""The dataset-level intensity window for images deeper than 8 bits (data/interim/intensity.json).

One window for the whole dataset, so two images of it are never scaled differently:
- every >8-bit image declares the same significant bits b (PNG sBIT, or DICOM BitsStored when no
  rescale moved the values) and no sample exceeds 2^b - 1 (12-bit data stored unscaled in 16 bits):
  window [0, 2^b - 1], source "declared-bits";
- otherwise the observed range over all >8-bit images: [min of minima, max of maxima], "observed".
8-bit datasets get window null (no mapping). pipeline.core.images.preprocess(..., window=) applies it;
the preprocess stage passes it on and train writes it into models/label_map.json (predict reads it).
"""

from __future__ import annotations

import logging

import pandas as pd

log = logging.getLogger(__name__)


def dataset_window(decoded: pd.DataFrame) -> dict:
    """{"window": [lo, hi] | null, "source", "bits", "n_images_over_8_bit"} from the decode columns
    (dtype, low, high, significant_bits) of the images that passed validation."""
    deep = decoded[decoded["dtype"].isin(("uint16", "float32"))]  # float32: DICOM after rescale
    if deep.empty:
        return {"window": None, "source": "8-bit", "bits": 8, "n_images_over_8_bit": 0}
    low, high = int(deep["low"].min()), int(deep["high"].max())
    bits = deep["significant_bits"]
    declared = bits.dropna().astype(int).unique()
    if bits.notna().all() and len(declared) == 1 and high <= 2 ** int(declared[0]) - 1:
        b = int(declared[0])
        window, source = [0, 2**b - 1], "declared-bits"
    else:
        b = max(int(max(abs(low), abs(high))).bit_length(), 1)
        window, source = ([low, high] if high > low else [0, max(high, 1)]), "observed"
        if len(declared) > 1:  # e.g. 12- and 16-bit DICOM without VOI: one window darkens the shallower
            log.warning(
                "images declare %d bit depths (%s) and share the observed window %s: the shallower ones "
                "use part of 0..255; give them a VOI window or store one depth (docs/data.md#dicom)",
                len(declared),
                ", ".join(map(str, sorted(declared))),
                window,
            )
    result = {"window": window, "source": source, "bits": b, "n_images_over_8_bit": len(deep)}
    log.info("intensity window for %d images deeper than 8 bits: %s (%s)", len(deep), window, source)
    return result
