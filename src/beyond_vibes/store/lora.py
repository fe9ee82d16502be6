"""Writing a LoRA adapter GGUF (with the `gguf` package, as llama.cpp's convert_lora_to_gguf.py writes one), for the
demo model's built-in adapter and the tests: no adapter for the demo models ships on a registry.

The demo adapter is not a fine-tune: random low-rank deltas on every layer's attention output and FFN down projection,
seeded, so it is the same file on every machine. It changes greedy answers (so a base-vs-adapter comparison has
something to find) and exercises the whole adapter path end to end; it says nothing about what fine-tuning buys."""

from __future__ import annotations

from pathlib import Path

TARGETS = ("attn_output.weight", "ffn_down.weight")


def write_lora(base: Path, out: Path, arch: str | None = None, magnitude: float = 0.05, rank: int = 8,
               seed: int = 0) -> Path:
    """A LoRA adapter for the base model file `base` at `out`; `arch` another architecture's name makes one that
    does not fit (for tests of the refusal)."""
    import numpy as np
    from gguf import GGUFReader, GGUFWriter

    reader = GGUFReader(str(base))
    writer = GGUFWriter(str(out), arch or str(reader.fields["general.architecture"].contents()))
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    rng = np.random.default_rng(seed)
    for t in reader.tensors:
        if t.name.endswith(TARGETS):
            n_in, n_out = int(t.shape[0]), int(t.shape[1])  # ggml order: ne[0] is the input dimension
            writer.add_tensor(f"{t.name}.lora_a", (rng.standard_normal((rank, n_in)) * magnitude).astype(np.float32))
            writer.add_tensor(f"{t.name}.lora_b", (rng.standard_normal((n_out, rank)) * magnitude).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def demo_adapter(base: Path, out: Path) -> Path:
    """models.yaml's `demo-shift` adapter of the demo model (adapters.<name>.call)."""
    return write_lora(base, out, magnitude=0.05, rank=4, seed=42)
