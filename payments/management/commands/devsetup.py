"""Local set-up for `make run`: token on anvil, funded hot wallet, rates, the sample sanctions list, admin (with its
TOTP device), demo partner, Stripe webhook."""

import os
from pathlib import Path

import httpx
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from eth_account import Account

from onchain.api import devchain_bootstrap, wallet_balances
from payments.models import Partner, PartnerAPIKey, Rate
from payments.sanctions.load import sanctions_sample_load
from payments.services.rates import rates_refresh
from payments.services.reconciliation import treasury_dev_book_opening
from payments.services.setup import SEED_RATES, corridors_seed, partner_create, rates_seed
from staff.services import totp_device_provision


class Command(BaseCommand):
    help = "Prepare a local gateway (anvil + localstripe). Reads its secrets from the environment."

    def add_arguments(self, parser):
        parser.add_argument("--demo-key-file", required=True, help="where to keep the demo partner's key (mode 600)")
        parser.add_argument("--usdkg-chain-id", type=int, help="also deploy dev USDKG on this chain (its RPC URL in "
                            "CHAIN_RPCS, its hot wallet's key in HOT_WALLET_USDKG_PRIVATE_KEY)")

    def handle(self, *args, demo_key_file, usdkg_chain_id=None, **options):
        key = os.environ.get("HOT_WALLET_PRIVATE_KEY")
        password = os.environ.get("DEV_ADMIN_PASSWORD")
        totp_key = os.environ.get("DEV_ADMIN_TOTP_KEY")
        if not key or not password or not totp_key:
            raise CommandError("HOT_WALLET_PRIVATE_KEY, DEV_ADMIN_PASSWORD and DEV_ADMIN_TOTP_KEY must be set "
                               "(make run sets them).")
        address = Account.from_key(key).address
        chain, token, wallet = devchain_bootstrap(hot_wallet_address=address)
        held, gas = wallet_balances(wallet, token)
        self.stdout.write(f"KGST token {token.address} on chain {chain.chain_id}; hot wallet {wallet.address} holds "
                          f"{held // 10**token.decimals:,} KGST and {gas // 10**18} ETH for gas")
        if usdkg_chain_id is not None:
            usdkg_key = os.environ.get("HOT_WALLET_USDKG_PRIVATE_KEY")
            if not usdkg_key:
                raise CommandError("HOT_WALLET_USDKG_PRIVATE_KEY must be set for --usdkg-chain-id (make run sets it).")
            u_chain, u_token, u_wallet = devchain_bootstrap(
                wallets=[(Account.from_key(usdkg_key).address, "HOT_WALLET_USDKG_PRIVATE_KEY")], chain_id=usdkg_chain_id,
                symbol="USDKG", chain_name="anvil USDKG (local)")
            held, gas = wallet_balances(u_wallet, u_token)
            self.stdout.write(f"USDKG token {u_token.address} on chain {u_chain.chain_id}; hot wallet {u_wallet.address} "
                              f"holds {held // 10**u_token.decimals:,} USDKG and {gas // 10**18} ETH for gas")
        # The dev float is minted with no ledger entry: book it as treasury funding, so the treasury reconciliation
        # (beat) finds the books and the chain in agreement.
        for currency in ("KGS", "USD") if usdkg_chain_id is not None else ("KGS",):
            opening = treasury_dev_book_opening(currency=currency)
            if opening is not None:
                self.stdout.write(f"booked the dev {currency} float as treasury funding ({opening.reference})")
        corridors_seed()
        # NBKR-style rates: the bundled recorded file (or the live feed when NBKR_RATES_URL is set); beat refreshes.
        for rate in rates_refresh():
            self.stdout.write(f"rate {rate}")
        missing = {c: v for c, v in SEED_RATES.items() if not Rate.objects.filter(source_currency=c).exists()}
        if missing:  # the source gave nothing for these (RATES_SOURCE=manual, or the live feed failed)
            rates_seed(rates=missing)

        # A sample sanctions list, so screening works out of the box; loaded again only when the file changed.
        version, created = sanctions_sample_load()
        self.stdout.write(f"sanctions sample list #{version.pk}: {version.name_count} names, "
                          f"{version.address_count} addresses{'' if created else ' (unchanged)'}")

        user_model = get_user_model()
        admin, _ = user_model.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        admin.set_password(password)
        admin.save()
        # Admin always asks for a TOTP code; make run prints how to get this device's codes (gateway/dev/totp.py).
        totp_device_provision(user=admin, key_hex=totp_key, name="make run")

        key_path = Path(demo_key_file)
        partner = Partner.objects.filter(name="demo").first()
        # The file may hold a key of another database (a test run's, a dropped database): keep it only if it works here.
        if partner is None or not key_path.exists() or not _key_works(key_path.read_text().strip(), partner):
            _, raw = partner_create(name="demo")
            key_path.write_text(raw)
            key_path.chmod(0o600)

        if "127.0.0.1" in settings.STRIPE_API_BASE or "localhost" in settings.STRIPE_API_BASE:
            # The endpoint gets the API version our SDK pins, as the production endpoint must (docs/runbook.md).
            response = httpx.post(f"{settings.STRIPE_API_BASE}/_config/webhooks/tulpar", timeout=10, data={
                "url": f"{settings.PUBLIC_BASE_URL}/webhooks/stripe", "secret": settings.STRIPE_WEBHOOK_SECRET,
                "api_version": settings.STRIPE_API_VERSION})
            response.raise_for_status()
        self.stdout.write("Local set-up done.")


def _key_works(raw, partner):
    try:
        key = PartnerAPIKey.objects.get_from_key(raw)
    except PartnerAPIKey.DoesNotExist:
        return False
    return key.partner_id == partner.pk and key.livemode and not key.revoked and not key.has_expired
