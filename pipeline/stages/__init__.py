"""One module per dvc.yaml stage, each with a pure `run(cfg, inputs, outputs)`."""
