"""What changed since the champion (issue #19): the champion's manifests from its recorded dvc.lock
and the DVC cache (lineage), the current ones (frames), embeddings of the champion (embed), the
champion scored on the new images (score), the summary reports/changes.json (summary), the page
reports/changes.html (report) and the whole computation (compute) the stage and `medpipe changes` run.
Statistics are pipeline.drift's; this package finds the data and the model and writes the outputs."""
