"""`engines list`: each llama.cpp engine with where it comes from (binary, image) and what this host can run."""

from __future__ import annotations

import shutil
from dataclasses import dataclass

from beyond_vibes.catalog import Catalog, Engine
from beyond_vibes.errors import ConfigError
from beyond_vibes.settings import Settings


@dataclass
class EngineRow:
    engine: str
    binary: str | None
    devices: str
    image: str
    image_state: str
    host: str


@dataclass
class Survey:
    engines: list[EngineRow]
    container_engine: str
    gpu_tools: str
    engine_configs: list[str]


def survey(settings: Settings, catalog: Catalog) -> Survey:
    from beyond_vibes.runtime.container import docker_client, host_has
    from beyond_vibes.runtime.process import list_devices

    try:
        client = docker_client(settings)
        engine_state = f"reachable at {settings.docker_host or 'the default Docker socket'}"
    except ConfigError as e:
        client, engine_state = None, f"not reachable ({str(e).split(' (')[0].replace('container engine not reachable at ', '')})"
    rows = []
    for engine in Engine:
        spec = catalog.engine_spec(engine)
        binary = spec.binary or (str(settings.find_llama_server() or "") if engine == Engine.cpu else None) or None
        devices = ", ".join(list_devices(binary)) or "none (CPU)" if binary else "-"
        if client is None:
            image_state = "?"
        else:
            try:
                client.images.get(spec.image)
                image_state = "yes"
            except Exception:  # noqa: BLE001
                image_state = "no (pulled on first use)"
        why = host_has(engine)
        rows.append(EngineRow(engine.value, binary, devices, spec.image, image_state, "yes" if why is None else why))
    tools = [t for t in ("nvidia-smi", "rocm-smi", "amd-smi") if shutil.which(t)]
    return Survey(rows, engine_state, ", ".join(tools) or "none (VRAM is not measured)", list(catalog.engine_configs))
