"""Staff roles. Each is a Django group holding exactly these permissions plus every view permission of VIEWED_APPS;
`roles_sync` makes it so after every `migrate` (and `manage.py roles_sync` on demand), undoing changes made by
hand. docs/runbook.md ("Staff access") says who does what. Permissions are named, not imported: staff imports no app.
"""

VIEWED_APPS = ("payments", "onchain", "staff")

ROLES = {
    # Day-to-day operations: refunds of failed settlements, cancelling before settlement, stopping a wallet, alerts.
    "operator": ("payments.refund_transfer", "payments.cancel_transfer", "onchain.halt_wallet", "onchain.resolve_alert"),
    # Screening decisions: release (with a second officer) or reject held transfers.
    "compliance officer": ("payments.release_transfer", "payments.reject_transfer"),
    # The float and the hot wallets: halts and resumes (a nonce halt with a second treasurer), nonces, wallet and
    # token settings, margins, fees and rates.
    "treasury": ("onchain.halt_wallet", "onchain.resume_wallet", "onchain.resync_nonce", "onchain.resolve_alert",
                 "onchain.add_hotwallet", "onchain.change_hotwallet", "onchain.change_token", "onchain.change_chain",
                 "payments.change_corridor", "payments.add_rate", "payments.change_rate"),
    # Reads everything, changes nothing.
    "auditor": (),
}
