"""Counts that stay cheap on big tables: read at most `cap`+1 rows of an index range, never a full COUNT(*)."""

from dataclasses import dataclass

# Counts past this are shown as "1,000+": a dashboard reads at most this many rows of anything that can grow.
COUNT_CAP = 1000


@dataclass(frozen=True)
class Bounded:
    """A count read with LIMIT cap+1: `capped` says there are more than `count`."""

    count: int
    capped: bool

    def __str__(self):
        return f"{self.count:,}+" if self.capped else f"{self.count:,}"


def bounded_count(queryset, cap=COUNT_CAP):
    """How many rows `queryset` has, reading at most cap+1 of their primary keys."""
    n = len(queryset.order_by().values_list("pk", flat=True)[:cap + 1])
    return Bounded(min(n, cap), n > cap)
