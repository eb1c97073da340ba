"""Admin glue for staff actions: a confirmation page that asks for a reason (as Django's delete confirmation asks
"are you sure?"), and a ModelAdmin mixin that answers 403 to an action the user may not run. The decisions live in
staff.services; these only show pages and messages."""

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse

from staff.models import AuditEntry
from staff.services import action_perform, action_preview

Out = AuditEntry.Outcome
LEVELS = {Out.DONE: messages.SUCCESS, Out.APPROVED: messages.SUCCESS, Out.REQUESTED: messages.WARNING,
          Out.DECLINED: messages.INFO, Out.STALE: messages.ERROR, Out.REFUSED: messages.ERROR}


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason (recorded in the audit trail with your name)", max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        error_messages={"required": "Give a reason: it goes into the audit trail with your name."})


def confirm_with_reason(modeladmin, request, queryset, *, rows, run):
    """The body of an admin action that needs a reason. A bare action POST (the changelist's) renders the
    confirmation page: what happens to each selected row (`rows`: (obj, note) pairs) and a required reason. Posted
    back from that page (`post` and a reason), `run(reason)` runs and its outcomes become messages; None sends admin
    back to the changelist. A blank reason re-renders the page with the error beside the field."""
    form = ReasonForm(request.POST if request.POST.get("post") else None)
    if form.is_bound and form.is_valid():
        for outcome in run(form.cleaned_data["reason"]):
            modeladmin.message_user(request, outcome.message, LEVELS.get(outcome.outcome, messages.INFO))
        return None
    name = request.POST.get("action", "")
    actions = modeladmin.get_actions(request)
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": str(actions[name][2]) if name in actions else name,
        "opts": opts,
        "app_label": opts.app_label,
        "action": name,
        "rows": rows,
        "form": form,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/staff/confirm_action.html", context)


def guarded_action_response(modeladmin, request, queryset, action):
    """An admin action that runs a registered staff.actions.GuardedAction on the selected rows."""
    rows = [(obj, action_preview(action=action, obj=obj)) for obj in queryset]
    return confirm_with_reason(
        modeladmin, request, queryset, rows=rows,
        run=lambda reason: action_perform(action=action, actor=request.user, ids=[obj.pk for obj, _ in rows],
                                          reason=reason))


class GuardedActionsMixin:
    """Posting an action this user may not run is a 403, not Django's quiet "No action selected" (or, when the user
    may run no action at all, a changelist that ignores the POST)."""

    def changelist_view(self, request, extra_context=None):
        name = request.method == "POST" and request.POST.get("action")
        if name:
            declared = {n for _, n, _ in self._get_base_actions()}
            if name in declared and name not in self.get_actions(request):
                raise PermissionDenied(f"{request.user.get_username()} may not run {name}")
        return super().changelist_view(request, extra_context)
