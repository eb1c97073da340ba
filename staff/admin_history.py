"""History of values in admin (django-simple-history): every change made through a model's admin page asks for a
reason, which the history row keeps with the user (HistoryRequestMiddleware) and the old and new values. The
history page and each past version are read-only: no revert (SIMPLE_HISTORY_REVERT_DISABLED hides the button; a
POST to a past version is refused here too, since the library would still save it)."""

from django import forms
from django.contrib.admin.utils import flatten_fieldsets
from django.core.exceptions import PermissionDenied
from simple_history.admin import SimpleHistoryAdmin

from staff.services import REASON_MAX

REASON_FIELD = "change_reason"


class HistoryAdmin(SimpleHistoryAdmin):
    """For the admin of a model with `history = HistoricalRecords()`. `ask_reason = False` for an admin whose
    changes run through a staff action that already asks for one (and sets the history's reason itself)."""

    ask_reason = True

    def get_form(self, request, obj=None, change=False, **kwargs):
        if self.ask_reason:
            # The reason is the form's own field, not the model's: build the model form without it, then add it.
            fields = kwargs["fields"] if "fields" in kwargs else flatten_fieldsets(self.get_fieldsets(request, obj))
            if fields is not None:
                kwargs["fields"] = [f for f in fields if f != REASON_FIELD]
        form = super().get_form(request, obj, change=change, **kwargs)
        if not self.ask_reason:
            return form
        field = forms.CharField(
            label="Reason for this change (kept in the history with your name)", max_length=REASON_MAX,
            widget=forms.Textarea(attrs={"rows": 2, "cols": 80}),
            error_messages={"required": "Give a reason: it goes into the history with your name."})
        return type(form.__name__, (form,), {REASON_FIELD: field})

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if self.ask_reason and REASON_FIELD not in fields:
            fields.append(REASON_FIELD)
        return fields

    def save_model(self, request, obj, form, change):
        if self.ask_reason:
            obj._change_reason = form.cleaned_data[REASON_FIELD].strip()
        super().save_model(request, obj, form, change)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":
            raise PermissionDenied("History is read-only: change the current values, with a reason.")
        return super().history_form_view(request, object_id, version_id, extra_context)
