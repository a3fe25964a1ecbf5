"""Preprocessed image arrays: every image decoded and resized ONCE (the preprocess stage).

Layout of the directory (data/preprocessed/):
- <split>.npy  uint8 (N, S, S, C), plain .npy: np.load(..., mmap_mode="r") maps it without reading
- <split>.csv  the split's manifest rows, byte-for-byte the input manifest (row i = image i)
- meta.json    image_size, channels, window and per-split row count + sha256 of both files

Modules: `store` reads and checks the layout (train/evaluate), `build` writes it (preprocess).
Nothing here imports TensorFlow, DVC, GX or MLflow (the GPU host has none of them).
"""

from pipeline.arrays.store import META, SPLITS, Split, load_split, read_meta

__all__ = ["META", "SPLITS", "Split", "load_split", "read_meta"]
