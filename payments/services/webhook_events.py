"""What becomes a webhook event: every status change of a partner's transfer (a common.status.StatusListener, told in
the transaction that writes it, so the outbox row commits or rolls back with the change) and every movement of a
partner's balance (services/balances.py calls balance_movement_record in its transaction)."""

from django.utils import timezone

from common.status import status_listener_register
from payments.models import Transfer
from payments.services.webhooks import BALANCE_MOVEMENT, TRANSFER_CREATED, events_record


def transfer_event_type(source, target):
    return TRANSFER_CREATED if source is None else f"transfer.{target}"


def _iso(value):
    return value.isoformat() if value else None


def transfer_payload(transfer, *, previous_status):
    """A stable subset of the API's transfer (TransferOutputSerializer), plus the status it left."""
    quote = transfer.quote
    payload = {"id": str(transfer.pk), "livemode": transfer.livemode, "status": transfer.status,
               "previous_status": previous_status,
               "source_amount": str(quote.source_amount), "source_currency": quote.source_currency,
               "target_amount": str(quote.target_amount), "target_currency": quote.target_currency,
               "funding_method": transfer.funding_method, "failure_reason": transfer.failure_reason or None,
               "created_at": _iso(transfer.created_at), "funded_at": _iso(transfer.funded_at),
               "completed_at": _iso(transfer.completed_at)}
    reference = getattr(transfer, "reference", None)
    if reference:
        payload["reference"] = reference
    return payload


class TransferEvents:
    """The StatusListener of Transfer: one outbox event per partner transfer that moved."""

    def status_changed(self, *, model, changes, instance):
        _on_transfer_status(changes, instance)


def _on_transfer_status(changes, instance):
    if instance is not None:
        transfers = {instance.pk: instance}
    else:
        # Only partner transfers make events: web transfers are not loaded at all (a payout batch of 200 web
        # transfers read them all again, with their quotes, only to skip each one).
        transfers = Transfer.objects.select_related("quote").filter(partner__isnull=False).in_bulk(
            [pk for pk, _, _ in changes])
    records = []
    for pk, source, target in changes:
        transfer = transfers.get(pk)
        if transfer is None or transfer.partner_id is None:  # web transfers have no partner to tell
            continue
        records.append((transfer.partner_id, transfer_event_type(source, target), f"transfer:{pk}",
                        transfer_payload(transfer, previous_status=source) | {"status": target}))
    events_record(records=records)


def balance_movement_record(*, partner, currency, kind, amount_minor, balance_after_minor, entry_id, transfer_id=None):
    """In the caller's transaction: a `balance.movement` event (signed amounts in minor units)."""
    events_record(records=[(partner, BALANCE_MOVEMENT, f"balance:{partner.pk}:{currency}", {
        "currency": currency, "kind": kind, "amount_minor": amount_minor, "balance_after_minor": balance_after_minor,
        "entry_id": entry_id, "transfer_id": str(transfer_id) if transfer_id else None,
        "at": timezone.now().isoformat()})])


_LISTENER = TransferEvents()


def connect():
    status_listener_register(Transfer, _LISTENER)
