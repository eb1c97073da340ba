"""Small database helpers the ORM does not offer."""

from django.db import router
from django.db.models.constants import OnConflict
from django.db.models.sql.subqueries import InsertQuery


def insert_unless_taken(obj):
    """INSERT `obj` … ON CONFLICT DO NOTHING RETURNING its primary key, in one statement: True (and obj.pk set) when
    this call inserted it, False when a row with the same unique values already exists (obj is then not saved).
    Unlike get_or_create, no savepoint, and unlike bulk_create(ignore_conflicts=True), the caller learns which it was.
    Field defaults and pre_save (auto_now_add) apply as in save(); signals do not fire."""
    meta = obj._meta
    fields = [f for f in meta.concrete_fields if not f.generated and f is not meta.auto_field]
    query = InsertQuery(type(obj), on_conflict=OnConflict.IGNORE)
    query.insert_values(fields, [obj])
    using = router.db_for_write(type(obj))
    rows = query.get_compiler(using=using).execute_sql(returning_fields=[meta.pk])
    if not rows or rows[0] is None:
        return False
    obj.pk = rows[0][0]
    obj._state.adding, obj._state.db = False, using
    return True
