"""Staff roles. Each is a Django group holding exactly these permissions plus every view permission of VIEWED_APPS;
`roles_sync` makes it so after every `migrate` (and `manage.py roles_sync` on demand), undoing changes made by
hand. docs/runbook.md ("Staff access") says who does what. Permissions are named, not imported: staff imports no app.
"""

VIEWED_APPS = ("payments", "onchain", "staff")

ROLES = {
    # Day-to-day operations: refunds of failed settlements, cancelling before settlement, stopping a wallet, alerts.
    # Reconciliation: resolving differences (with a reason) and typing in partners' statements.
    "operator": ("payments.refund_transfer", "payments.cancel_transfer", "onchain.halt_wallet", "onchain.resolve_alert",
                 "onchain.acknowledge_alert",
                 "payments.resolve_reconciliation_item", "payments.add_partnerstatement",
                 # partners' API keys: issue, rotate (with an overlap window), revoke
                 "payments.add_partnerapikey", "payments.rotate_partnerapikey", "payments.revoke_partnerapikey"),
    # Screening decisions: release (with a second officer) or reject held transfers; screen a held one again.
    # KYC: record senders' documents and verify them (tiers), and set the tiers' limits.
    "compliance officer": ("payments.release_transfer", "payments.reject_transfer", "payments.rescreen_transfer",
                           "payments.change_senderprofile", "payments.verify_sender_id", "payments.verify_sender_funds",
                           "payments.change_limittier"),
    # The float and the hot wallets: halts and resumes (a nonce halt with a second treasurer), nonces, wallet and
    # token settings, margins, fees and rates; partners' prefunded balances.
    "treasury": ("onchain.halt_wallet", "onchain.resume_wallet", "onchain.resync_nonce", "onchain.resolve_alert",
                 "onchain.acknowledge_alert",
                 "onchain.add_hotwallet", "onchain.change_hotwallet", "onchain.change_token", "onchain.change_chain",
                 "payments.change_corridor", "payments.add_rate", "payments.change_rate",
                 # partners' prefunded balances: their top-ups and withdrawals, with the bank's reference
                 "payments.topup_partner_balance", "payments.withdraw_partner_balance",
                 "payments.resolve_reconciliation_item",
                 # payout partners: where their payouts' KGST goes (the settlement address is checked as a wallet)
                 "payments.add_payoutpartner", "payments.change_payoutpartner", "payments.record_payout_return"),
    # Reads everything, changes nothing.
    "auditor": (),
}
