"""beyond-vibes: evidence for which local model, quant and llama.cpp build to trust with which work."""
