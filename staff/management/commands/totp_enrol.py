import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from staff.services import totp_device_provision


class Command(BaseCommand):
    help = ("Give a staff member a new TOTP device (admin's second factor) and print its otpauth:// URI once, to hand "
            "over on a secure channel. The key is shown nowhere else (admin hides it).")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="authenticator", help="the device's name (replaced if it exists)")

    def handle(self, *args, username, name, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        device = totp_device_provision(user=user, key_hex=secrets.token_hex(20), name=name)
        self.stdout.write(device.config_url)
