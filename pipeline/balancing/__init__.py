"""The balance stage's tools: random OpenCV augmentation for oversampling (augment)."""
