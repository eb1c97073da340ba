"""One way to change a status. On an instance: a django-fsm transition (`mark_*`) on a StatusField, which refuses
direct assignment. In bulk: a compare-and-set method of the model's queryset, built on `_move` below, the only
way an UPDATE may touch the status column (a plain `.update(status=...)` is refused)."""

import threading
from typing import Protocol

from django.db import models, transaction
from django.utils import timezone
from django_fsm import FSMField, FSMFieldDescriptor

_reloading = threading.local()



class StatusListener(Protocol):
    """Told of every status change of a model, inside the transaction that writes it, so its own writes (an outbox
    row) commit or roll back with the change. `changes`: (pk, source, target) per row, source None for a row just
    inserted; `instance`: the saved instance, or None for a queryset's compare-and-set."""

    def status_changed(self, *, model, changes, instance): ...


_listeners = {}


def status_listener_register(model, listener):
    """Start-up wiring (an AppConfig.ready()): `listener` hears `model`'s status changes (and its proxies')."""
    registered = _listeners.setdefault(model._meta.concrete_model, [])
    if listener not in registered:
        registered.append(listener)


def _listeners_of(model):
    return _listeners.get(model._meta.concrete_model, ())


def status_listened(model):
    """Whether any StatusListener hears `model` (a bulk insert, which calls no save(), must not skip one)."""
    return bool(_listeners_of(model))


def _tell(model, changes, instance):
    for listener in _listeners_of(model):
        listener.status_changed(model=model, changes=changes, instance=instance)


def _status_field(model):
    return next((f for f in model._meta.concrete_fields if isinstance(f, StatusField)), None)


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
    the shared field object for a moment, which races between threads; this marks only the instance reloading.)
    Remembers the status it was loaded with, so `save` can tell the StatusListeners what moved."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        """A save that writes a new status (or inserts a row) tells the model's StatusListeners in the same
        transaction."""
        field = _status_field(type(self))
        update_fields = kwargs.get("update_fields")
        source = getattr(self, "_saved_status", None) if not self._state.adding else None
        target = self.__dict__.get(field.attname) if field is not None else None
        writes_status = update_fields is None or field is not None and field.name in update_fields
        if (field is None or not writes_status or (source == target and not self._state.adding)
                or not _listeners_of(type(self))):
            super().save(*args, **kwargs)
            self._remember_status()
            return
        with transaction.atomic(using=kwargs.get("using"), savepoint=False):  # no savepoint queries when nested
            super().save(*args, **kwargs)
            _tell(type(self), [(self.pk, source, target)], self)
        self._remember_status()

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._remember_status()
        return instance

    def refresh_from_db(self, *args, **kwargs):
        ids = _reloading.__dict__.setdefault("ids", set())
        ids.add(id(self))
        try:
            super().refresh_from_db(*args, **kwargs)
        finally:
            ids.discard(id(self))
        self._remember_status()

    def _remember_status(self):
        field = _status_field(type(self))
        if field is not None and field.attname in self.__dict__:
            self._saved_status = self.__dict__[field.attname]


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
        if not _listeners_of(self.model):
            return super(StatusQuerySet, moving).update(**{self.status_field: target}, **fields)
        with transaction.atomic(using=self.db, savepoint=False):
            # The rows that move, locked, so the listeners hear exactly those (and their previous status).
            rows = list(moving.select_for_update(of=("self",)).order_by("pk").values_list("pk", self.status_field))
            moved = super(StatusQuerySet, self.model._default_manager.filter(pk__in=[pk for pk, _ in rows])
                          ).update(**{self.status_field: target}, **fields)
            if rows:
                _tell(self.model, [(pk, was, target) for pk, was in rows], None)
        return moved
