"""The admin site: django-otp's OTPAdminSite (a session counts only once an OTP device verified it), with a login
form that picks the user's device itself when there is exactly one, so username, password and code go in one
submit. gateway/urls.py installs it as admin.site's class."""

from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class StaffLoginForm(OTPAdminAuthenticationForm):
    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None:
            # Only when there is one device: trying a code against several would count failures on each.
            devices = list(devices_for_user(user, confirmed=True, for_verify=True))
            if len(devices) == 1:
                device = devices[0]
        return device


class StaffAdminSite(OTPAdminSite):
    login_form = StaffLoginForm
    # Our product's name on every admin page (the header, the browser tab and the home page's title).
    site_header = "tulpar operations"
    site_title = "tulpar operations"
    index_title = "Operations dashboard"
    # The app list beside every page took 300 of a 1280-px laptop's pixels and clipped the lists' last columns (the
    # hot wallets' gas); the breadcrumbs and the home page reach every list.
    enable_nav_sidebar = False
