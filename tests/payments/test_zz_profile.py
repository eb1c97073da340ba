import cProfile, pstats, time, io
from django.db import connection
from django.test.utils import CaptureQueriesContext
from tests.conftest import QUOTE_BODY

def test_profile(api, pricing, chain):
    from onchain.services.treasury import treasury_check
    treasury_check(token_id=chain["token"].id)
    for _ in range(20):
        api.post("/api/v1/quotes", QUOTE_BODY, format="json")
    with CaptureQueriesContext(connection) as ctx:
        r = api.post("/api/v1/quotes", {"source_currency": "USD", "target_amount": "10000.00", "target_currency": "KGS"}, format="json")
    assert r.status_code == 201
    for q in ctx.captured_queries:
        print(q["time"], q["sql"][:200])
    pr = cProfile.Profile()
    t = time.perf_counter()
    pr.enable()
    for _ in range(200):
        api.post("/api/v1/quotes", {"source_currency": "USD", "target_amount": "10000.00", "target_currency": "KGS"}, format="json")
    pr.disable()
    print("per quote ms", (time.perf_counter() - t) / 200 * 1000)
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(45)
    print(s.getvalue())
