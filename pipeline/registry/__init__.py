"""The model registry side of medpipe: MLflow client, version tags, the promotion gate, the data index,
lineage queries and reproduction of a registered version."""
