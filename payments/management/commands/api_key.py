from django.core.management.base import BaseCommand, CommandError

from payments.models import Partner, PartnerAPIKey
from payments.scopes import SCOPES
from payments.services.api_keys import ApiKeyRefused, api_key_by_prefix, api_key_create, api_key_revoke, api_key_rotate


class Command(BaseCommand):
    help = ("Partner API keys: `create PARTNER [--scopes a,b] [--test]`, `rotate PREFIX`, `revoke PREFIX`, "
            "`list [PARTNER]`. A new key is printed once; only its hash is stored.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("partner", help="the partner's name")
        create.add_argument("--scopes", help=f"comma-separated, of: {', '.join(SCOPES)} (default: all but "
                                             f"payouts:confirm)")
        create.add_argument("--test", action="store_true", help="a sandbox key (tlp_test_…)")
        create.add_argument("--rate-limit", type=int, help="requests per minute for this key")
        rotate = sub.add_parser("rotate")
        rotate.add_argument("prefix", help="the key's prefix, e.g. tlp_live_AbCd1234")
        rotate.add_argument("--overlap-hours", type=float, help="how long the old key keeps working")
        revoke = sub.add_parser("revoke")
        revoke.add_argument("prefix")
        listing = sub.add_parser("list")
        listing.add_argument("partner", nargs="?")

    def handle(self, *args, action, **options):
        try:
            getattr(self, f"_{action}")(**options)
        except ApiKeyRefused as exc:
            raise CommandError(exc.detail) from exc

    def _create(self, *, partner, scopes, test, rate_limit, **_):
        found = Partner.objects.filter(name=partner).first()
        if found is None:
            raise CommandError(f"No partner named {partner!r} (create_partner makes one).")
        key, raw = api_key_create(partner=found, scopes=scopes, livemode=not test, rate_limit_per_minute=rate_limit)
        self.stdout.write(f"Key {key.display_prefix} for {found.name}, scopes: {' '.join(key.scopes)}")
        self.stdout.write(f"API key (shown once): {raw}")

    def _rotate(self, *, prefix, overlap_hours, **_):
        from datetime import timedelta

        old = api_key_by_prefix(prefix)
        overlap = None if overlap_hours is None else timedelta(hours=overlap_hours)
        new, raw = api_key_rotate(key_id=old.pk, overlap=overlap)
        old.refresh_from_db()
        self.stdout.write(f"Key {old.display_prefix} stops at {old.expiry_date:%Y-%m-%d %H:%M:%S %Z}; "
                          f"its successor is {new.display_prefix}")
        self.stdout.write(f"API key (shown once): {raw}")

    def _revoke(self, *, prefix, **_):
        key = api_key_by_prefix(prefix)
        api_key_revoke(key_id=key.pk)
        self.stdout.write(f"Key {key.display_prefix} revoked.")

    def _list(self, *, partner=None, **_):
        keys = PartnerAPIKey.objects.select_related("partner").order_by("partner__name", "-created")
        if partner:
            keys = keys.filter(partner__name=partner)
        for key in keys:
            state = "revoked" if key.revoked else ("expired" if key.has_expired else "active")
            self.stdout.write(f"{key.display_prefix}  {key.partner.name}  {state}  scopes={','.join(key.scopes)}  "
                              f"last_used={key.last_used_at or '-'}  expires={key.expiry_date or '-'}")
