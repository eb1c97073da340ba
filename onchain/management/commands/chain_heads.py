"""`manage.py chain_heads`: follow each chain's new heads (onchain.heads), one runner per chain; Ctrl-C or SIGTERM
stops it. Run it beside the workers and beat; without it tracking runs at beat's pace."""

import signal
import threading

from django.core.management.base import BaseCommand

from onchain.heads import heads_run_all


class Command(BaseCommand):
    help = "Track and build on each new head (newHeads subscription, polling when it is unavailable)."

    def add_arguments(self, parser):
        parser.add_argument("--chain", type=int, action="append", help="chain id(s) (the row's); default all")

    def handle(self, *args, chain=None, **options):
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            heads_run_all(stop, chain_ids=chain)
        except KeyboardInterrupt:
            stop.set()
