"""The OpenAPI document states every constraint the validation enforces.

apispec writes most of them from the fields (lengths, enums, patterns in their
metadata). Three things need more, and live here: a schema's rule over several
fields (one event or a batch: `OPENAPI` on the schema class), the configured
purposes (they are settings, known once the app is built), and the entries of a
list the views check in one pass (`RawList.documented_items`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_instance
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import fields

from suppression.api.fields import Purpose, RawList
from suppression.domain.policy import ALL_PURPOSES


class ServiceConverter(OpenAPIConverter):
    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        jsonschema = super().schema2jsonschema(schema)
        # A rule over several fields, which marshmallow checks in @validates_schema.
        jsonschema.update(getattr(resolve_schema_instance(schema), "OPENAPI", {}))
        return jsonschema


class ServicePlugin(MarshmallowPlugin):
    Converter = ServiceConverter


def describe_configured_fields(
    plugin: MarshmallowPlugin, purposes: tuple[str, ...]
) -> Callable[..., dict[str, Any]]:
    """Teach the app's converter the purposes of this configuration and the
    entries of raw lists; call before any blueprint is registered."""

    def configured_properties(
        self: OpenAPIConverter, field: fields.Field, **_kwargs: Any
    ) -> dict[str, Any]:
        if isinstance(field, Purpose):
            return {"enum": [*purposes, ALL_PURPOSES] if field.allow_all else list(purposes)}
        if isinstance(field, RawList):
            items = [
                item if isinstance(item, dict) else self.resolve_nested_schema(item)
                for item in field.documented_items
            ]
            return {"type": "array", "items": items[0] if len(items) == 1 else {"anyOf": items}}
        return {}

    assert plugin.converter is not None, "the plugin is given to the spec first"
    plugin.converter.add_attribute_function(configured_properties)
    return configured_properties
