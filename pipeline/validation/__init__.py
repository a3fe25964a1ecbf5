"""Validation of a canonical manifest: one decode pass, row checks, Great Expectations suite.

Modules:
- reasons:      the quarantine reason vocabulary (exact strings written to quarantine.csv)
- headers:      format sniffing, header dimensions (decompression-bomb guard), truncation checks
- checks:       what one file's decode says (dimensions, depth, warnings, the quarantine reason)
- decode:       the parallel decode pass (one OpenCV decode per image)
- checked:      row checks, then the decode pass, as one per-row frame (reason, detail, what was read)
- intensity:    one intensity window for > 8-bit images (PNG sBIT, else the observed range)
- inputs:       -i/-o keys, params sanity, reading the manifest and labels.json
- rows:         manifest-level row checks (bad name, label, patient) and the duplicate check
- expectations: the GX 1.x suite run through a checkpoint with Data Docs
- offline_docs: Data Docs that load their CSS/JS from their own folder (usable offline)
"""

import os as _os

# OpenCV reads this limit once, when the library loads: it only takes effect if set before
# the first `import cv2`. The header check in `headers.py` is the primary guard; this is the
# backstop for formats whose header we do not parse. 100M = ValidateConfig.max_pixels' default.
_os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", "100000000")
