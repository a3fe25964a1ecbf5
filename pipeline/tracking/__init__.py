"""MLflow tracking: the connection (tracking URI, client, experiment) and the MLflow run of one
training (train_run), opened by the train stage and continued by register."""
