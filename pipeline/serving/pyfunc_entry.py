"""MLflow models-from-code entry of the medpipe pyfunc model (copied into each logged model).

MLflow executes this file when the model is saved and when it is loaded; it only names the
PythonModel (no pickled objects in the model directory).
"""

from mlflow.models import set_model

from pipeline.serving.pyfunc_model import MedpipeModel

set_model(MedpipeModel())
