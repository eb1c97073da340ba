"""One way to change a status. On an instance: a django-fsm transition (`mark_*`) on a StatusField, which refuses
direct assignment. In bulk: a compare-and-set method of the model's queryset, built on `_move` below, the only
way an UPDATE may touch the status column (a plain `.update(status=...)` is refused)."""

import threading

from django.db import models
from django.utils import timezone
from django_fsm import FSMField, FSMFieldDescriptor

_reloading = threading.local()


class _GuardedDescriptor(FSMFieldDescriptor):
    def __set__(self, instance, value):
        if id(instance) in getattr(_reloading, "ids", ()):
            self.field.set_state(instance, value)  # a reload from the database, not a status change
            return
        super().__set__(instance, value)


class StatusField(FSMField):
    """An FSM status that only transitions may change (assignment raises AttributeError once loaded)."""

    descriptor_class = _GuardedDescriptor

    def __init__(self, *args, **kwargs):
        kwargs["protected"] = True
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("protected", None)
        return name, path, args, kwargs


class StatusModel(models.Model):
    """`refresh_from_db` may reload the status. (django-fsm's own mixin does this by switching protection off on
    the shared field object for a moment, which races between threads; this marks only the instance reloading.)"""

    class Meta:
        abstract = True

    def refresh_from_db(self, *args, **kwargs):
        ids = _reloading.__dict__.setdefault("ids", set())
        ids.add(id(self))
        try:
            super().refresh_from_db(*args, **kwargs)
        finally:
            ids.discard(id(self))


class StatusQuerySet(models.QuerySet):
    status_field = "status"

    def update(self, **kwargs):
        if self.status_field in kwargs:
            raise TypeError(f"{self.model.__name__}.{self.status_field} changes only through a transition "
                            f"(an instance's mark_* or its queryset's compare-and-set methods)")
        return super().update(**kwargs)

    def _move(self, *, source, target, **fields):
        """Rows of this queryset whose status is in `source` move to `target` (with `fields`), in one statement.
        Rows in any other status are left alone: the caller compares the count with what it expected."""
        if any(f.name == "updated_at" for f in self.model._meta.concrete_fields) and "updated_at" not in fields:
            fields["updated_at"] = timezone.now()
        moving = self.filter(**{f"{self.status_field}__in": list(source)})
        return super(StatusQuerySet, moving).update(**{self.status_field: target}, **fields)
