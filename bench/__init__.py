"""pgpt.bench: benchmarks of pgpt against the alternatives (may import torch, like pgpt.export)."""
