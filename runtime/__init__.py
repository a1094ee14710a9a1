"""pgpt.runtime: the headless core (settings, ONNX sessions, generation, embeddings, cache)."""
