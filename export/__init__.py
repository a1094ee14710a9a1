"""pgpt.export: Hugging Face / GGUF models -> ONNX (fp32, fp16, int8, int4), quality check, manifest."""
