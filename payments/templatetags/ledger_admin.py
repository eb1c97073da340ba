"""Ledger pieces for admin templates: amounts in minor units shown as money, a transfer's journal and where its money
is now (the reads are payments.services.ledger_views)."""

from django import template

from payments.services.ledger_views import money_format, transfer_journal, transfer_money_now

register = template.Library()


@register.filter
def money(minor, currency):
    """`{{ 1500000|money:"RUB" }}` → 15 000.00 RUB."""
    return money_format(minor, currency)


@register.filter
def credit_money(minor, currency):
    """A credit (negative minor units) shown as a positive amount in a credit column."""
    return money_format(-minor, currency)


@register.inclusion_tag("admin/payments/_transfer_ledger.html")
def transfer_ledger(transfer):
    return {"entries": transfer_journal(transfer=transfer), "money_now": transfer_money_now(transfer=transfer)}
