"""Serving many requests on loaded models: continuous batching and the model pool."""
