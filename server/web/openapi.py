"""The OpenAPI 3.1 document, kept in the repo as one fragment per capability.

`server/openapi/*.json` each hold some `paths` (and `components`); the document served at
`/api/openapi.json` is their union, so a capability documents its routes next to itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

FRAGMENTS = Path(__file__).resolve().parents[1] / "openapi"


def load_document() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads((FRAGMENTS / "base.json").read_bytes())
    for fragment_path in sorted(FRAGMENTS.glob("*.json")):
        if fragment_path.name == "base.json":
            continue
        fragment = orjson.loads(fragment_path.read_bytes())
        for route, operations in fragment.get("paths", {}).items():
            document["paths"].setdefault(route, {}).update(operations)
        for section, members in fragment.get("components", {}).items():
            document.setdefault("components", {}).setdefault(section, {}).update(members)
    return document
