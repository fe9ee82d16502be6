"""Settings from the environment (a twelve-factor style app): every knob has a default."""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Config:
    port: int = 8080
    data_file: str = "notes.json"
    max_note_chars: int = 10_000


def load_config(env=None) -> Config:
    env = os.environ if env is None else env
    return Config(
        port=int(env.get("NOTES_PORT", "8080")),
        data_file=env.get("NOTES_DATA_FILE", "notes.json"),
        max_note_chars=int(env.get("NOTES_MAX_CHARS", "10000")),
    )
