"""One way to change a status. On an instance: a django-fsm transition (`mark_*`), the field protected from
direct assignment. In bulk: a compare-and-set method of the model's queryset, built on `_move` below, the only
way an UPDATE may touch the status column (a plain `.update(status=...)` is refused)."""

from django.db import models
from django.utils import timezone
from django_fsm import FSMModelMixin


class StatusModel(FSMModelMixin, models.Model):
    """Lets `refresh_from_db` reload a protected FSM field."""

    class Meta:
        abstract = True


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
