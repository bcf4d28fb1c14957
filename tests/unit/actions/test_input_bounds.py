"""Every text an agent can send is bounded, and the schema it reads says so."""

from __future__ import annotations

from typing import Any

import pytest

from bunsui_core.actions import REGISTRY, Gateway
from bunsui_core.actions._models import MAX_ID_CHARS, MAX_TEXT_CHARS
from bunsui_core.config import Settings
from bunsui_core.errors import BunsuiError


def unbounded_strings(schema: dict[str, Any], defs: dict[str, Any], where: str) -> list[str]:
    """Locations in a JSON Schema where a string (value or mapping key) has no maxLength."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return unbounded_strings(defs[name], defs, f"{where}->{name}")
    found = []
    if schema.get("type") == "string" and "maxLength" not in schema and "enum" not in schema:
        found.append(where)
    for key in ("anyOf", "oneOf", "allOf"):
        for index, option in enumerate(schema.get(key, [])):
            found += unbounded_strings(option, defs, f"{where}|{index}")
    for name, prop in schema.get("properties", {}).items():
        found += unbounded_strings(prop, defs, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        found += unbounded_strings(schema["items"], defs, f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        found += unbounded_strings(schema["additionalProperties"], defs, f"{where}{{}}")
        if "maxLength" not in schema.get("propertyNames", {}):
            found.append(f"{where}{{key}}")
    return found


class TestInputBounds:
    def test_every_string_of_every_action_input_has_a_max_length(self):
        """No action takes a string (id, path, filter value, param key or value) without a
        bound in its JSON Schema."""
        problems = []
        for action in REGISTRY:
            schema = action.input_model.model_json_schema()
            problems += unbounded_strings(schema, schema.get("$defs", {}), action.name)
        assert problems == []

    def test_id_fields_are_bounded_tighter_than_free_text(self):
        """Fields named *_id take at most MAX_ID_CHARS; paths up to MAX_TEXT_CHARS."""
        session = REGISTRY.get("session:describe").input_model.model_json_schema()
        assert session["properties"]["session_id"]["maxLength"] == MAX_ID_CHARS
        validate = REGISTRY.get("pipeline:validate").input_model.model_json_schema()
        assert validate["properties"]["file"]["maxLength"] == MAX_TEXT_CHARS

    @pytest.mark.parametrize(
        ("action", "arguments", "field"),
        [
            ("session:describe", {"session_id": "s" * (MAX_ID_CHARS + 1)}, "session_id"),
            ("session:list", {"filter": {"pipeline_id": "p" * 10_000}}, "filter.pipeline_id"),
            ("pipeline:validate", {"file": "/" + "d" * MAX_TEXT_CHARS}, "file"),
            (
                "job:update-config",
                {"job_id": "a", "session_id": "ses-1", "param": {"k" * 5000: "v"}},
                "param",
            ),
        ],
    )
    def test_oversized_text_is_invalid_argument(self, tmp_path, action, arguments, field):
        """An oversized value is INVALID_ARGUMENT naming the field, and the audit entry keeps
        a few hundred bytes of it."""
        gateway = Gateway(Settings.resolve(tmp_path / "home"))
        with pytest.raises(BunsuiError) as raised:
            gateway.invoke("ai-agent", action, arguments)
        assert raised.value.code == "INVALID_ARGUMENT"
        assert any(e["field"].startswith(field) for e in raised.value.details["errors"])
        store = gateway.open_store()
        try:
            (entry,) = store.list_audit(limit=10)
        finally:
            store.close()
        assert len(entry.model_dump_json()) < 4000
