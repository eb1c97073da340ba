"""The review queue (held transfers, oldest first, each hit explained side by side), and the screening results and
review decisions, read-only for everyone. Approve and reject are the guarded release and reject of payments/guarded.py
(compliance officers; a release needs a second officer); docs/compliance.md, "Review", says how it works."""

from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from common.admin import ReadOnlyAdmin
from payments import guarded
from payments.models import HeldTransfer, ReviewDecision, ScreeningResult
from payments.services import review
from staff.admin_actions import GuardedActionsMixin, guarded_action_response

HITS_TABLE = ('<table class="review-hits"><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th>'
              '<th>{}</th></tr></thead><tbody>{}</tbody></table>')


def _listed(hit):
    if hit.get("is_alias"):
        return format_html("{} <small>({} {})</small>", hit.get("listed_name", ""), _("alias of"),
                           hit.get("primary_name", ""))
    return format_html("{}", hit.get("listed_name", ""))


def _entry_facts(hit):
    facts = []
    if hit.get("birth_dates"):
        facts.append(f"{_('born')} {', '.join(hit['birth_dates'])}")
    if hit.get("nationalities"):
        facts.append(", ".join(hit["nationalities"]))
    return "; ".join(facts)


def hits_table(result):
    """The hits of one screening result, side by side: who was screened as what, against which listed name."""
    if result is None:
        return "—"
    if not result.hits:
        return format_html("<em>{}</em>", result.reason or result.get_decision_display())
    rows = format_html_join("", "<tr><td>{}<br><strong>{}</strong></td><td>{}<br><small>{}</small></td><td>{}</td>"
                                "<td>{}<br><small>{}</small></td><td>{} {}</td><td>{}</td></tr>", (
        (hit.get("party", "") or "?", hit.get("screened_name", ""), _listed(hit), _entry_facts(hit),
         f"{hit.get('score', 0):.2f}", hit.get("rule", ""), hit.get("explanation", ""), hit.get("source", ""),
         hit.get("source_id", ""), f"#{hit.get('entry_id', '')} v{hit.get('version_id', '')}")
        for hit in result.hits))
    return format_html(HITS_TABLE, _("screened"), _("listed name"), _("score"), _("rule"), _("list and id"),
                       _("entry"), rows)


@admin.register(HeldTransfer)
class ReviewQueueAdmin(GuardedActionsMixin, ReadOnlyAdmin):
    """Held transfers waiting for a compliance officer, oldest hold first."""

    list_display = ["waiting", "transfer", "amount", "parties", "hits", "release_request"]
    list_display_links = None
    search_fields = ["id", "sender_name", "recipient_name", "recipient_wallet"]
    actions = ["review_approve", "review_reject", "review_rescreen"]
    list_per_page = 50

    def get_queryset(self, request):
        return review.review_queue(super().get_queryset(request).select_related("quote"))

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    @admin.display(description=_("waiting"), ordering="held_since")
    def waiting(self, obj):
        return format_html("{}<br><small>{} {}</small>", review.held_for(obj.held_since), _("since"),
                           f"{timezone.localtime(obj.held_since):%Y-%m-%d %H:%M}")

    @admin.display(description=_("transfer"))
    def transfer(self, obj):
        url = reverse("admin:payments_transfer_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a><br><small>{}</small>', url, obj.pk, obj.failure_reason)

    @admin.display(description=_("amount"))
    def amount(self, obj):
        return format_html("{} {} → {} {}", obj.quote.source_amount, obj.quote.source_currency,
                           obj.quote.target_amount, obj.quote.target_currency)

    @admin.display(description=_("parties"))
    def parties(self, obj):
        return format_html("{}: {} ({})<br>{}: {} ({})<br><small>{}</small>", _("sender"), obj.sender_name,
                           obj.sender_phone, _("recipient"), obj.recipient_name, obj.recipient_phone,
                           obj.recipient_wallet)

    @admin.display(description=_("hits (latest screening)"))
    def hits(self, obj):
        result = review.latest_result(obj)
        if result is None:
            return hits_table(None)
        return format_html("{}<small>{} {} ({}): {}</small>", hits_table(result), _("screened"),
                           f"{timezone.localtime(result.run_at):%Y-%m-%d %H:%M}", result.trigger,
                           result.get_decision_display())

    @admin.display(description=_("decision"))
    def release_request(self, obj):
        pending = review.pending_request(obj, guarded.RELEASE.permission)
        if pending is None:
            return "—"
        url = reverse("admin:staff_approvalrequest_changelist") + f"?status__exact=pending&q={obj.pk}"
        return format_html('<a href="{}">{}</a>', url,
                           _("release asked by %(who)s: waits for a second officer")
                           % {"who": pending.requested_by.get_username()})

    @admin.action(description=_("Approve: release for payout (a second officer confirms)"), permissions=["release"])
    def review_approve(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded.RELEASE)

    @admin.action(description=_("Reject: refund the sender"), permissions=["reject"])
    def review_reject(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded.REJECT)

    @admin.action(description=_("Screen again now (the lists in force): it stays held"), permissions=["rescreen"])
    def review_rescreen(self, request, queryset):
        return guarded_action_response(self, request, queryset, guarded.RESCREEN)

    def has_rescreen_permission(self, request):
        return request.user.has_perm(guarded.RESCREEN.permission)

    def has_release_permission(self, request):
        return request.user.has_perm(guarded.RELEASE.permission)

    def has_reject_permission(self, request):
        return request.user.has_perm(guarded.REJECT.permission)


@admin.register(ScreeningResult)
class ScreeningResultAdmin(ReadOnlyAdmin):
    list_display = ["run_at", "transfer", "trigger", "decision", "status_after", "reason", "hit_count"]
    list_filter = ["decision", "trigger", "run_at"]
    search_fields = ["transfer__id", "trigger"]
    date_hierarchy = "run_at"
    readonly_fields = ["explained"]

    @admin.display(description=_("hits"))
    def hit_count(self, obj):
        return len(obj.hits)

    @admin.display(description=_("hits, side by side"))
    def explained(self, obj):
        return hits_table(obj)


@admin.register(ReviewDecision)
class ReviewDecisionAdmin(ReadOnlyAdmin):
    list_display = ["decided_at", "transfer", "decision", "decided_by_username", "requested_by_username", "reason",
                    "screening_result"]
    list_filter = ["decision", "decided_at"]
    search_fields = ["transfer__id", "decided_by_username", "requested_by_username", "reason"]
    list_select_related = ["screening_result"]
