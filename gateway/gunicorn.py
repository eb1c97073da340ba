"""gunicorn's settings for the web container (Dockerfile) and the HTTP benchmarks: `-c python:gateway.gunicorn`."""

import gc


def post_worker_init(worker):
    # Django, DRF, web3 and ICU leave ~190,000 long-lived objects in a loaded worker: a full collection walked them all
    # (110-127 ms each, 4 per worker in a make bench-api run, a request stalled behind each). Frozen, a collection
    # walks only what requests made since.
    gc.freeze()
