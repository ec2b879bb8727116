"""Reading the JSON files of a published directory, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path


def read_json(path: Path) -> dict:
    """``path`` parsed; ValueError naming the file when it is not valid JSON."""
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from error
