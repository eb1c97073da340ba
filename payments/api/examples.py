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

# Rates, bulk, sandbox, payout partners and webhooks ---------------------------------------------------------------

RATES = [
    OpenApiExample("rates", response_only=True, status_codes=["200"], value={"rates": [
        {"corridor": "RUB-KGS", "source_currency": "RUB", "target_currency": "KGS", "available": True,
         "unavailable_reason": None, "rate": "1.07850000", "official_rate": "1.08500000",
         "official_rate_date": "2026-11-29", "min_amount": "1000.00", "max_amount": "500000.00", "fixed_fee": "50.00",
         "percent_fee_bps": 140, "min_fee": "100.00", "max_fee": None},
        {"corridor": "USD-KGS", "source_currency": "USD", "target_currency": "KGS", "available": False,
         "unavailable_reason": "The official rate is out of date.", "rate": None, "official_rate": "87.45000000",
         "official_rate_date": "2026-11-26", "min_amount": "10.00", "max_amount": "5000.00", "fixed_fee": "1.00",
         "percent_fee_bps": 100, "min_fee": "2.00", "max_fee": "50.00"}]}),
]

BULK_ITEM = {"idempotency_key": "order-1001", "quote_id": QUOTE_ID, "sender": TRANSFER["sender"],
             "recipient": TRANSFER["recipient"], "funding": {"method": "balance"}}
BULK_CREATE = [
    OpenApiExample("two_transfers", summary="Two transfers paid from your balance", request_only=True, value={
        "items": [BULK_ITEM, {**BULK_ITEM, "idempotency_key": "order-1002",
                              "quote_id": "7d3e2b1a-9c8f-4e6d-8b5a-1f2e3d4c5b6a"}]}),
    OpenApiExample("per_item", summary="One created, one refused", response_only=True, status_codes=["200"], value={
        "results": [
            {"index": 0, "idempotency_key": "order-1001", "status": 201, "transfer": TRANSFER, "problem": None},
            {"index": 1, "idempotency_key": "order-1002", "status": 422, "transfer": None, "problem": {
                "type": "https://tulpar.example/problems/quote-expired", "title": "Quote expired", "status": 422,
                "detail": "This quote has expired: ask for a new one."}}]}),
    problem_example(413, "bulk-too-large", "Too many items in one bulk request",
                    "101 items: one request may carry at most 100; nothing was created. Split them.",
                    errors=[{"field": "items", "message": "101 items: one request may carry at most 100; nothing "
                                                          "was created. Split them."}]),
]

SANDBOX_SIMULATE = [
    OpenApiExample("funded", summary="As if the card payment succeeded", request_only=True, value={"event": "funded"}),
    OpenApiExample("transfer", response_only=True, status_codes=["200"],
                   value={**TRANSFER, "status": "funded", "funded_at": "2026-11-29T12:02:00Z"}),
    problem_example(409, "sandbox-move-refused", "The transfer cannot make this move",
                    "A completed transfer cannot become funded."),
]

PAYOUT = {
    "id": TRANSFER_ID, "reference": "TLP-7Q4M2K", "payout_partner": "demir-bank", "status": "awaiting",
    "amount": "15896.33", "currency": "KGS",
    "tx_hash": "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    "recipient": {"name": "Gulnara Usenova", "phone": "+996555123456", "account": "KG12 3456 7890"},
    "sent_at": "2026-11-29T12:05:00Z", "confirmed_at": None, "failed_at": None, "failure_reason": "",
}
PAYOUT_LIST = [
    OpenApiExample("page", response_only=True, status_codes=["200"],
                   value={"next": None, "previous": None, "results": [PAYOUT]}),
]
PAYOUT_CONFIRM = [
    OpenApiExample("confirmed", response_only=True, status_codes=["200"],
                   value={**PAYOUT, "status": "confirmed", "confirmed_at": "2026-11-29T12:20:00Z"}),
    problem_example(409, "payout-already-decided", "This payout was already confirmed or failed",
                    "This payout was failed: it cannot be confirmed."),
]
PAYOUT_FAIL = [
    OpenApiExample("reason", request_only=True, value={"reason": "Account closed"}),
    OpenApiExample("failed", response_only=True, status_codes=["200"], value={
        **PAYOUT, "status": "failed", "failed_at": "2026-11-29T12:20:00Z", "failure_reason": "Account closed"}),
    problem_example(404, "payout-not-found", "Payout not found", "No payout of yours has this id."),
]

ENDPOINT_ID = "ep_Xk2v9Qm4Lr7sT1wB"
EVENT_ID = "msg_2b7Zq9Xy4Lw8Vt1Rk3Ps6Nm0"
ENDPOINT = {"id": ENDPOINT_ID, "url": "https://partner.example/tulpar/webhooks", "description": "Transfers",
            "event_types": ["transfer.completed", "transfer.failed"], "enabled": True, "disabled_reason": "",
            "disabled_at": None, "created_at": "2026-11-29T12:00:00Z", "updated_at": "2026-11-29T12:00:00Z"}
SECRET = "whsec_MfKQ9r8GKYqXb3sCz4TqkV0R9a1kYfVb"
EVENT = {"id": EVENT_ID, "type": "transfer.completed", "payload": {"transfer": {**TRANSFER, "status": "completed"}},
         "created_at": "2026-11-29T12:30:00Z"}

WEBHOOK_ENDPOINT_LIST = [
    OpenApiExample("page", response_only=True, status_codes=["200"],
                   value={"next": None, "previous": None, "results": [ENDPOINT]}),
]
WEBHOOK_ENDPOINT_CREATE = [
    OpenApiExample("endpoint", request_only=True, value={
        "url": ENDPOINT["url"], "description": "Transfers", "event_types": ENDPOINT["event_types"]}),
    OpenApiExample("created", response_only=True, status_codes=["201"], value={**ENDPOINT, "secret": SECRET}),
    problem_example(422, "webhook-url-refused", "Webhook URL refused",
                    "The URL must use https.", errors=[{"field": "url", "message": "The URL must use https."}]),
]
WEBHOOK_ENDPOINT_READ = [
    OpenApiExample("endpoint", response_only=True, status_codes=["200"], value=ENDPOINT),
    problem_example(404, "not-found", "Not found", "No WebhookEndpoint matches the given query."),
]
WEBHOOK_ENDPOINT_UPDATE = [
    OpenApiExample("event_types", request_only=True, value={"event_types": ["*"]}),
    OpenApiExample("endpoint", response_only=True, status_codes=["200"], value={**ENDPOINT, "event_types": ["*"]}),
    problem_example(422, "webhook-event-type-unknown", "Unknown webhook event type",
                    "Unknown event type: transfer.teleported.",
                    errors=[{"field": "event_types", "message": "Unknown event type: transfer.teleported."}]),
]
WEBHOOK_ENDPOINT_DELETE = [
    problem_example(404, "not-found", "Not found", "No WebhookEndpoint matches the given query."),
]
WEBHOOK_ENDPOINT_ROTATE = [
    OpenApiExample("overlap", summary="The old secret keeps signing for an hour", request_only=True,
                   value={"overlap_seconds": 3600}),
    OpenApiExample("secret", response_only=True, status_codes=["200"], value={"secret": SECRET}),
]
WEBHOOK_ENDPOINT_ENABLE = [
    OpenApiExample("enabled", response_only=True, status_codes=["200"], value=ENDPOINT),
    problem_example(422, "webhook-url-refused", "Webhook URL refused",
                    "The URL resolves to an address that is not public.",
                    errors=[{"field": "url", "message": "The URL resolves to an address that is not public."}]),
]
WEBHOOK_ENDPOINT_TEST = [
    OpenApiExample("ping", response_only=True, status_codes=["202"], value={
        "id": EVENT_ID, "type": "webhook.test", "payload": {"endpoint_id": ENDPOINT_ID, "message": "ping"},
        "created_at": "2026-11-29T12:31:00Z"}),
]
WEBHOOK_EVENT_LIST = [
    OpenApiExample("page", response_only=True, status_codes=["200"],
                   value={"next": None, "previous": None, "results": [EVENT]}),
]
WEBHOOK_EVENT_READ = [
    OpenApiExample("event", response_only=True, status_codes=["200"], value=EVENT),
    problem_example(404, "not-found", "Not found", "No WebhookEvent matches the given query."),
]
WEBHOOK_EVENT_DELIVERIES = [
    OpenApiExample("deliveries", response_only=True, status_codes=["200"], value=[{
        "endpoint": ENDPOINT_ID, "state": "delivered", "attempts": 2, "next_attempt_at": None,
        "delivered_at": "2026-11-29T12:30:06Z", "last_status_code": 200, "last_error": "",
        "attempt_log": [
            {"number": 1, "status_code": 503, "response_snippet": "busy", "error": "", "duration_ms": 120,
             "created_at": "2026-11-29T12:30:01Z"},
            {"number": 2, "status_code": 200, "response_snippet": "ok", "error": "", "duration_ms": 95,
             "created_at": "2026-11-29T12:30:06Z"}]}]),
]
WEBHOOK_EVENT_REPLAY = [
    OpenApiExample("one_endpoint", request_only=True, value={"endpoint_id": ENDPOINT_ID}),
    OpenApiExample("queued", response_only=True, status_codes=["202"], value={"deliveries": 1}),
]
