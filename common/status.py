"""One way to change a status. On an instance: a django-fsm transition (`mark_*`) on a StatusField, which refuses
direct assignment. In bulk: a compare-and-set method of the model's queryset, built on `_move` below, the only
way an UPDATE may touch the status column (a plain `.update(status=...)` is refused)."""

import threading
from typing import Protocol

from django.db import connections, models, transaction
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

    def _move_ids(self, ids, *, source, target, **fields):
        """`_move` for the rows whose primary keys are `ids` (this queryset's own filters are not applied), for sets of
        thousands: on PostgreSQL one statement (the rows locked in pk order, moved, and their previous status
        returned for the listeners) with the keys as one array parameter, where `_move` sends a SELECT and an UPDATE
        each carrying thousands of parameters. Elsewhere it is `_move`. Returns how many rows moved."""
        ids = list(ids)
        connection = connections[self.db]
        if connection.vendor != "postgresql":
            return self.model._default_manager.db_manager(self.db).filter(pk__in=ids)._move(
                source=source, target=target, **fields)
        if not ids:
            return 0
        meta = self.model._meta
        if any(f.name == "updated_at" for f in meta.concrete_fields) and "updated_at" not in fields:
            fields["updated_at"] = timezone.now()
        status = meta.get_field(self.status_field)
        qn = connection.ops.quote_name
        table, pk = qn(meta.db_table), qn(meta.pk.column)
        sets, params = [f"{qn(status.column)} = %s"], [status.get_db_prep_save(target, connection)]
        for name, value in fields.items():
            field = meta.get_field(name)
            sets.append(f"{qn(field.column)} = %s")
            params.append(field.get_db_prep_save(value, connection))
        key_type = meta.pk.rel_db_type(connection)
        # Names come from the model's meta, every value is a parameter.
        sql = (f"UPDATE {table} SET {', '.join(sets)} "  # noqa: S608
               f"FROM (SELECT {pk} AS moved_pk, {qn(status.column)} AS was "
               f"FROM {table} WHERE {pk} = ANY(%s::{key_type}[]) AND {qn(status.column)} = ANY(%s::text[]) "
               f"ORDER BY {pk} FOR UPDATE) AS old WHERE {table}.{pk} = old.moved_pk RETURNING old.moved_pk, old.was")
        params += [[meta.pk.get_db_prep_value(i, connection) for i in ids], [str(s) for s in source]]
        with transaction.atomic(using=self.db, savepoint=False), connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = sorted(cursor.fetchall())
            if rows and _listeners_of(self.model):
                _tell(self.model, [(meta.pk.to_python(pk), was, target) for pk, was in rows], None)
        return len(rows)
