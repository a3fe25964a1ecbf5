"""Evaluation of a trained classifier: operating threshold, metrics, bootstrap CIs, HTML report.

Pure functions on arrays live here (threshold, metrics, calibration, bootstrap, patients, curves);
`scoring` ties them together (`score_model` is also used by the register stage's champion gate);
`figures`, `gallery`, `heatmap`, `model_card` and `report` build the self-contained HTML report.
"""
