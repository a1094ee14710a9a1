"""pgpt.runtime.llm: the model engine: ONNX Runtime sessions, generation, KV buffers, sampling, tokenizer text, chat, embeddings."""
