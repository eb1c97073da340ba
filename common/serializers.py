"""Read-only output serializers without DRF's per-instance field building.

A DRF serializer builds its fields on every instance: a ModelSerializer walks the model's meta and constructs each
field (and deep-copies the declared ones), which for a transfer with its quote is about half the CPU of a status read
beyond the bare request. An output serializer's fields never change, so `FieldsOnce` builds them once per class and
reuses what is stateless: plain fields (their `to_representation` reads only their own options), while method fields
run on the current instance (they may read `self.context`) and nested serializers get the current context. The
output is DRF's own, field for field (tests/common/test_serializers.py compares it with DRF's generic path).
"""

from rest_framework import serializers
from rest_framework.fields import get_attribute

PLAIN, METHOD, NESTED = range(3)


class FieldsOnce:
    """Mixin for read-only (output) serializers: representation from a plan built once per class. Not for input
    serializers, `many=True` nested fields or fields whose representation depends on the request."""

    @classmethod
    def _plan(cls):
        plan = cls.__dict__.get("_fields_once_plan")
        if plan is None:
            plan = []
            for field in cls(context={}).fields.values():
                if field.write_only:
                    continue
                if isinstance(field, serializers.SerializerMethodField):
                    plan.append((METHOD, field.field_name, field.method_name, ()))
                elif isinstance(field, FieldsOnce) and isinstance(field, serializers.BaseSerializer):
                    plan.append((NESTED, field.field_name, type(field), tuple(field.source_attrs)))
                elif isinstance(field, (serializers.BaseSerializer, serializers.ManyRelatedField)):
                    raise TypeError(f"{cls.__name__}.{field.field_name}: FieldsOnce nests only FieldsOnce serializers")
                else:
                    plan.append((PLAIN, field.field_name, field, tuple(field.source_attrs)))
            cls._fields_once_plan = plan
        return plan

    def to_representation(self, instance):
        out = {}
        for kind, name, how, attrs in self._plan():
            if kind == METHOD:
                out[name] = getattr(self, how)(instance)
                continue
            value = get_attribute(instance, attrs)  # DRF's own lookup: mappings, callables, a missing related row
            if value is None:
                out[name] = None
            elif kind == PLAIN:
                out[name] = how.to_representation(value)
            else:
                out[name] = how(context=self.context).to_representation(value)
        return out
