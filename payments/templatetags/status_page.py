"""Status pages: times named with their zone, the recipient link as a QR code.

`{% local_time value %}` renders a <time> in the current time zone (the view picks it: Bishkek for the recipient,
UTC for the sender) with the zone named, so the page is right without JavaScript. On the sender's page
(`browser_time` in the context) it also carries `data-local-time`, and static/js/local-time.js rewrites it into
the browser's own zone, named, on load and after every htmx swap.
"""

from datetime import UTC

import segno
from django import template
from django.utils import formats, timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy, ngettext

register = template.Library()

# Zones whose name a reader knows better than an IANA key.
ZONE_NAMES = {"Asia/Bishkek": gettext_lazy("Bishkek time")}


def utc_offset(value):
    """UTC+6, UTC-5, UTC+5:30 for an aware datetime in its own zone."""
    minutes = int(value.utcoffset().total_seconds() // 60)
    sign, minutes = ("+" if minutes >= 0 else "-"), abs(minutes)
    return f"UTC{sign}{minutes // 60}" + (f":{minutes % 60:02d}" if minutes % 60 else "")


def zone_label(value):
    """The zone of `value` (aware, already in the zone shown) as a reader names it: "UTC", "Bishkek time, UTC+6"."""
    offset = utc_offset(value)
    key = getattr(value.tzinfo, "key", None)
    if offset == "UTC+0" and key in (None, "UTC", "Etc/UTC"):
        return "UTC"
    return f"{ZONE_NAMES.get(key, key or offset)}, {offset}" if key else offset


@register.simple_tag(takes_context=True)
def local_time(context, value):
    if not value:
        return ""
    shown = timezone.localtime(value)
    text = f"{formats.date_format(shown, 'DATETIME_FORMAT')} ({zone_label(shown)})"
    iso = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if context.get("browser_time"):
        return format_html('<time datetime="{}" data-local-time>{}</time>', iso, text)
    return format_html('<time datetime="{}">{}</time>', iso, text)


@register.simple_tag
def qr_svg(data, label):
    """An inline SVG QR code of `data` (error correction M, the standard quiet zone), named `label` for screen
    readers. No style attributes: the Content-Security-Policy allows styles from our stylesheet only."""
    svg = segno.make(data, error="m").svg_inline(scale=4, dark="#000", light="#fff", svgclass="qr", lineclass=None,
                                                  title=str(label))
    # segno writes the SVG itself; the only outside text in it is `label`, escaped here and by segno in <title>.
    return mark_safe(svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" ', 1))  # noqa: S308


@register.simple_tag
def eta_phrase(eta):
    """"Arrives in about 40 seconds / 3 minutes / 2 hours" for an Eta (payments/services/eta.py): one sentence per unit,
    so each language declines the number its own way."""
    if eta is None:
        return ""
    seconds = max(eta.seconds, 1)
    if seconds < 90:
        n = max(5, -(-seconds // 5) * 5)  # up to the next 5 s: "about 37 seconds" claims a precision we lack
        return ngettext("Arrives in about %(count)s second", "Arrives in about %(count)s seconds", n) % {"count": n}
    if seconds < 90 * 60:
        n = -(-seconds // 60)
        return ngettext("Arrives in about %(count)s minute", "Arrives in about %(count)s minutes", n) % {"count": n}
    n = -(-seconds // 3600)
    return ngettext("Arrives in about %(count)s hour", "Arrives in about %(count)s hours", n) % {"count": n}
