"""Examples shown in the OpenAPI schema for every partner API operation (one place, so docs/api.md and SDKs agree)."""

from drf_spectacular.utils import OpenApiExample

from common.openapi import problem_example

QUOTE_ID = "0b6f1c2e-6a4b-4d55-9d1e-2f1d8c3a7b10"
TRANSFER_ID = "5f0c8a3e-1d2b-4c6a-9e7f-3b2a1c0d9e8f"
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"

QUOTE = {
    "id": QUOTE_ID, "direction": "send", "source_currency": "RUB", "source_amount": "15000.00",
    "target_currency": "KGS", "target_amount": "15896.33", "rate": "1.0785", "official_rate": "1.0850",
    "official_rate_date": "2026-11-29", "fee": "260.00", "total_charged": "15000.00", "cost_percent": "2.33",
    "expires_at": "2026-11-29T12:15:00Z", "created_at": "2026-11-29T12:00:00Z",
}

TRANSFER = {
    "id": TRANSFER_ID, "status": "awaiting_funding", "quote": QUOTE,
    "sender": {"name": "Aibek Usenov", "phone": "+79161234567", "email": "aibek@example.com"},
    "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "wallet_address": WALLET},
    "funding": {"method": "card", "payment_intent_id": "pi_3Q", "client_secret": "pi_3Q_secret_x", "amount": "15000.00",
                "currency": "RUB", "card_attempts_left": 3, "payout_not_before": None},
    "settlement": None,
    "sender_status_url": "https://tulpar.example/t/Yp2x", "recipient_status_url": "https://tulpar.example/r/Q8vd",
    "failure_reason": "", "created_at": "2026-11-29T12:01:00Z", "funded_at": None, "completed_at": None,
}

QUOTE_CREATE = [
    OpenApiExample("send_fixed", summary="The sender pays 15,000 RUB, fee included",
                   value={"source_currency": "RUB", "source_amount": "15000.00", "target_currency": "KGS"},
                   request_only=True),
    OpenApiExample("receive_fixed", summary="The recipient gets exactly 20,000 KGS",
                   value={"source_currency": "USD", "target_amount": "20000.00", "target_currency": "KGS"},
                   request_only=True),
    OpenApiExample("quote", value=QUOTE, response_only=True, status_codes=["201"]),
    problem_example(422, "amount-out-of-range", "Amount outside the corridor's limits",
                    "Send between 1,000.00 and 500,000.00 RUB.",
                    errors=[{"field": "source_amount", "message": "Send between 1,000.00 and 500,000.00 RUB."}]),
]

TRANSFER_CREATE = [
    OpenApiExample("card", summary="Paid by card through Stripe.js", request_only=True, value={
        "quote_id": QUOTE_ID, "sender": TRANSFER["sender"], "recipient": TRANSFER["recipient"]}),
    OpenApiExample("balance", summary="Paid from your prefunded balance", request_only=True, value={
        "quote_id": QUOTE_ID, "sender": TRANSFER["sender"], "recipient": TRANSFER["recipient"],
        "funding": {"method": "balance"}}),
    OpenApiExample("transfer", value=TRANSFER, response_only=True, status_codes=["201", "200"]),
    problem_example(400, "validation-error", "Invalid request", "sender.phone: Enter a phone number with its "
                    "country code: +7…, +996… or +1…",
                    errors=[{"field": "sender.phone", "message": "Enter a phone number with its country code: +7…, "
                                                                 "+996… or +1…"}]),
    problem_example(409, "quote-already-used", "Quote already used by another transfer",
                    "This quote already backs another transfer: ask for a new one.",
                    errors=[{"field": "quote_id", "message": "This quote already backs another transfer: ask for a "
                                                             "new one."}]),
]

TRANSFER_READ = [
    OpenApiExample("transfer", value=TRANSFER, response_only=True, status_codes=["200"]),
    problem_example(404, "not-found", "Not found", "No Transfer matches the given query."),
]

TRANSFER_LIST = [
    OpenApiExample("page", response_only=True, status_codes=["200"], value={
        "next": "https://tulpar.example/api/v1/transfers?cursor=cD0yMDI2LTExLTI5", "previous": None,
        "results": [TRANSFER]}),
    problem_example(400, "invalid-cursor", "Invalid cursor",
                    "The cursor is not valid: use a `next` or `previous` link of this list as it was given."),
]

TRANSFER_CANCEL = [
    OpenApiExample("cancelled", value={**TRANSFER, "status": "cancelled", "failure_reason": "cancelled by the sender"},
                   response_only=True, status_codes=["200"]),
    problem_example(409, "transfer-not-cancellable", "This transfer can no longer be cancelled",
                    "Settlement has started: the transfer can no longer be cancelled."),
]

BALANCES = [
    OpenApiExample("balances", response_only=True, status_codes=["200"], value={
        "balances": [{"currency": "RUB", "balance": "1500000.00"}, {"currency": "USD", "balance": "0.00"}]}),
]

STATEMENT = [
    OpenApiExample("statement", response_only=True, status_codes=["200"], value={
        "next": None, "previous": None, "results": [
            {"entry_id": 812, "kind": "funding", "amount": "-15000.00", "currency": "RUB",
             "balance_after": "1485000.00", "reference": "", "transfer_id": TRANSFER_ID,
             "created_at": "2026-11-29T12:01:00Z"},
            {"entry_id": 800, "kind": "topup", "amount": "1500000.00", "currency": "RUB",
             "balance_after": "1500000.00", "reference": "SWIFT 20261128-77", "transfer_id": None,
             "created_at": "2026-11-28T09:30:00Z"}]}),
    problem_example(404, "not-found", "Not found", "No balances are kept in 'EUR': use one of RUB, USD."),
]
