"""Staff actions on senders' KYC (run from admin through staff.services: permission, reason, audit trail).
Verifying what an operator recorded moves the sender up a tier (payments/services/limits.py); a transfer held for
its tier is then released with the usual release action."""

from payments.models import SenderProfile
from payments.services.limits import sender_document_verify, sender_funds_verify
from staff.actions import GuardedAction


def _verify_id(profile, *, reason, actor):
    sender_document_verify(profile=profile, by=actor.get_username())
    return f"ID document verified: the sender is at tier {profile.tier}"


def _verify_funds(profile, *, reason, actor):
    sender_funds_verify(profile=profile, by=actor.get_username())
    return f"proof of funds verified: the sender is at tier {profile.tier}"


VERIFY_ID = GuardedAction(permission="payments.verify_sender_id", model=SenderProfile, done="ID document verified",
                          perform=_verify_id)
VERIFY_FUNDS = GuardedAction(permission="payments.verify_sender_funds", model=SenderProfile,
                             done="proof of funds verified", perform=_verify_funds)
ACTIONS = (VERIFY_ID, VERIFY_FUNDS)
