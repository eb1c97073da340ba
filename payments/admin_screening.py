"""Admin's "screen a name" form: the same lookup as `manage.py sanctions_check` (payments.services.screening
screening_lookup), with the hits and their scores side by side. Staff who may view transfers may use it; it changes
nothing. gateway/urls.py installs it under /admin/screening/ and templates/admin/index.html links it."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

from payments.sanctions.matching import ScreeningInputError
from payments.services.screening import screening_lookup

PERMISSION = "payments.view_transfer"


class ScreenNameForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200, required=False,
                           help_text=_("Latin or Cyrillic, in any word order."))
    birth_date = forms.CharField(label=_("Date of birth"), max_length=10, required=False,
                                 help_text=_("YYYY-MM-DD or YYYY; raises or lowers the score."))
    nationality = forms.CharField(label=_("Nationality"), max_length=2, required=False,
                                  help_text=_("Two-letter country code, e.g. KG."))
    address = forms.CharField(label=_("Wallet address"), max_length=64, required=False)

    def clean(self):
        data = super().clean()
        if not data.get("name") and not data.get("address"):
            raise forms.ValidationError(_("Give a name or a wallet address."))
        return data


def screen_name_view(request):
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    form = ScreenNameForm(request.GET or None)
    result = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            result = screening_lookup(name=data["name"] or None, birth_date=data["birth_date"] or None,
                                      nationality=data["nationality"] or None, address=data["address"] or None)
        except ScreeningInputError as exc:
            form.add_error(exc.field if exc.field in form.fields else "name", str(exc))
    return TemplateResponse(request, "admin/payments/screen_name.html", {
        **admin.site.each_context(request), "title": _("Screen a name"), "form": form, "result": result})
