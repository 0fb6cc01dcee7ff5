"""The execution settings as API input: fields derived from the one model definition.

`ExecutionSettingsSerializer` is the mixin every request that carries execution settings
(starting a backtest, a training run, creating a config) extends. Its fields are built from
`ExecutionSettings`' model fields, so bounds (validators), choices and help texts with units
live in one place (apps/strategies/execution.py) and reach the OpenAPI schema unchanged. Every
field is optional: a missing one takes the model default, or the config's when a backtest
starts from a config.
"""
from __future__ import annotations

import math

from rest_framework import serializers

from .execution import EXECUTION_FIELDS, BelowValidator, ExecutionSettings


def _execution_fields() -> dict[str, serializers.Field]:
    builder = serializers.ModelSerializer()  # only its model-field → serializer-field mapping is used
    fields = {}
    for name in EXECUTION_FIELDS:
        field_class, kwargs = builder.build_standard_field(name, ExecutionSettings._meta.get_field(name))
        kwargs["required"] = False
        kwargs.pop("default", None)
        below = [v.limit_value for v in kwargs.get("validators", []) if isinstance(v, BelowValidator)]
        if below and "max_value" not in kwargs:
            # "below 1" stated in the schema as its largest float, so the documented maximum is exact.
            kwargs["max_value"] = math.nextafter(min(below), -math.inf)
        fields[name] = field_class(**kwargs)
    return fields


ExecutionSettingsSerializer = type("ExecutionSettingsSerializer", (serializers.Serializer,), {
    "__doc__": "Capital, costs, sizing, exits and short permission (fractions: 0.001 = 0.1 %).",
    "__module__": __name__,
    **_execution_fields(),
})
