"""What senders and recipients are told, per transfer status and role (docs/notifications.md). Worded for people, not
for the state machine: a held transfer is "being checked" (never a sanctions review: nothing may tip anyone off), a
rejected one is told only when its refund starts, and the recipient hears nothing of the sender's card.

Placeholders: %(source)s what the sender paid, %(target)s the som the recipient gets, %(name)s the recipient's name,
%(sender)s the sender's first name, %(partner)s the payout partner."""

from django.utils.translation import gettext_lazy as _

from payments.models import Transfer

S = Transfer.Status
SENDER, RECIPIENT = "sender", "recipient"

# status → role → (subject, also the SMS text; body of the e-mail)
MESSAGES = {
    S.FUNDED: {
        SENDER: (_("Payment received: %(target)s for %(name)s"),
                 _("We received your payment of %(source)s. %(name)s will get %(target)s after the usual checks.")),
        RECIPIENT: (_("%(sender)s is sending you %(target)s"),
                    _("The sender has paid. The money will be sent to you shortly.")),
    },
    # Sent to a phone alone: the recipient learns here where to claim it (the reminders follow, services/claims.py).
    S.AWAITING_CLAIM: {
        SENDER: (_("Paid: %(name)s can now claim %(target)s"),
                 _("We received your payment of %(source)s and sent %(name)s a text message with a link to claim the "
                   "money. You can share your recipient link too.")),
        RECIPIENT: (_("%(sender)s sent you %(target)s: claim it"),
                    _("Open the link, confirm your phone with the code we text you, and choose a wallet or a payout "
                      "partner to receive the money.")),
    },
    S.HELD: {
        SENDER: (_("Your transfer to %(name)s is being checked"),
                 _("Your transfer is going through additional checks, which can take some time. We will write again "
                   "when it moves on; you do not need to do anything.")),
    },
    S.AWAITING_PAYOUT_CONFIRMATION: {
        SENDER: (_("%(target)s sent to %(partner)s for %(name)s"),
                 _("The money reached %(partner)s, which pays it out to the recipient's account there. We will write "
                   "again when it confirms the payout.")),
        RECIPIENT: (_("%(target)s from %(sender)s is at %(partner)s"),
                    _("%(partner)s pays the money out to your account there.")),
    },
    S.COMPLETED: {
        SENDER: (_("Delivered: %(name)s received %(target)s"),
                 _("Your transfer is complete: the recipient has received the money.")),
        RECIPIENT: (_("You received %(target)s from %(sender)s"),
                    _("The money has been paid out to you.")),
    },
    S.REFUNDING: {
        SENDER: (_("Your transfer to %(name)s is being refunded"),
                 _("The transfer was cancelled. A full refund of %(source)s is on its way.")),
        RECIPIENT: (_("The transfer from %(sender)s was cancelled"),
                    _("This transfer will not be paid out.")),
    },
    S.REFUNDED: {
        SENDER: (_("Refunded: %(source)s"),
                 _("Your payment was refunded in full. A card refund can take a few days to show on your "
                   "statement.")),
    },
    S.SETTLEMENT_FAILED: {
        SENDER: (_("Your transfer to %(name)s is delayed"),
                 _("The payout is delayed. Our team is working on it and will complete it or refund you in full; you "
                   "do not need to do anything.")),
        RECIPIENT: (_("The transfer from %(sender)s is delayed"),
                    _("The payout to you is delayed. Our team is working on it.")),
    },
    S.REFUND_FAILED: {
        SENDER: (_("Problem with your refund of %(source)s"),
                 _("Your card's bank did not accept the refund. Our team will contact you to return your money.")),
    },
    S.CHARGED_BACK: {
        SENDER: (_("Payment taken back by your bank"),
                 _("The bank that issued your card took back the payment of %(source)s, so nothing was sent. If you "
                   "did not ask your bank for this, please contact us.")),
        RECIPIENT: (_("The transfer from %(sender)s was cancelled"),
                    _("This transfer will not be paid out.")),
    },
}
# A payout partner's failure reads to people as the chain's would: a delay our team handles.
MESSAGES[S.PAYOUT_FAILED] = MESSAGES[S.SETTLEMENT_FAILED]
# Told to the recipient only if the recipient heard of the transfer before (a phone-only transfer may not have been).
RECIPIENT_ONLY_IF_TOLD = frozenset({S.REFUNDING, S.CHARGED_BACK})
