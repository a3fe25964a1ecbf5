"""Training a Keras model on preprocessed arrays: input batches (data), the fit loop and its callbacks
(fit, epoch_log, precise_bn, checkpoints, resume), ensemble members (members), losses and optimizers,
checkpoint selection, device runtime, export of models/, and prediction with test-time views (predict)."""
