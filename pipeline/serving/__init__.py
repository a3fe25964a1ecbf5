"""Scoring new images with a trained model: the predictor (one prediction path for `medpipe
predict` and the MLflow pyfunc model), the pyfunc model class and its models-from-code entry."""
