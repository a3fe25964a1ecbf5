"""Leaves every layer may use: user-facing errors, the manifest schema, credential redaction,
provenance (git revision, params hash, sha256, dvc.lock hashes), DVC's own files, image decoding.

Nothing here imports another pipeline package (tests/unit/test_layers.py checks it).
"""
