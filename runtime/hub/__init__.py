"""pgpt.runtime.hub: the Hugging Face token, access preflight, verified downloads and network facts."""
