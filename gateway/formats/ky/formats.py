"""Kyrgyz formats: Django's, with the decimal comma Kyrgyz writes (as Russian does; Django's ky file has a point)."""

from django.conf.locale.ky.formats import *  # noqa: F403

DECIMAL_SEPARATOR = ","
THOUSAND_SEPARATOR = "\xa0"  # a no-break space, as Russian: a number never wraps across lines
NUMBER_GROUPING = 3
# Django's Kyrgyz month names are capitalised ("29 Ноябрь 2026 ж."), which Kyrgyz does not write mid-sentence:
# dates go numeric, as Kyrgyz documents and bank receipts write them.
DATETIME_FORMAT = "d.m.Y H:i"
