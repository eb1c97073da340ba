"""`{% operations_dashboard %}`: the operations dashboard on admin home (payments/admin_dashboard.py), for staff who
may view transfers (every role); others see admin's usual index only."""

from django import template

from payments.admin_dashboard import dashboard

register = template.Library()


@register.inclusion_tag("admin/operations_dashboard.html", takes_context=True)
def operations_dashboard(context):
    request = context["request"]
    if not request.user.has_perm("payments.view_transfer"):
        return {"shown": False}
    return {"shown": True, **dashboard()}
