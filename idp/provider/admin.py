"""Admin: people (with their subject identifier and sign-in lock-out), OAuth applications, and
the back-channel logouts not delivered yet."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import models
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html
from oauth2_provider import admin as toolkit_admin
from oauth2_provider.models import get_application_model

from provider import backchannel, lockout
from provider.login_sessions import people_sign_out_everywhere
from provider.models import Account, ApplicationLogout, BackchannelDelivery

User = get_user_model()
Status = BackchannelDelivery.Status


class AccountInline(admin.StackedInline):
    model = Account
    can_delete = False
    readonly_fields = ["sub"]
    fields = ["sub", "email_verified"]


admin.site.unregister(User)


def deliveries_url(application_id: int | None = None, status: str | None = None) -> str:
    """The deliveries' list in the admin, filtered by application and status."""
    filters = {"application__id__exact": application_id, "status__exact": status}
    query = "&".join(f"{name}={value}" for name, value in filters.items() if value is not None)
    return reverse("admin:provider_backchanneldelivery_changelist") + (f"?{query}" if query else "")


@admin.register(User)
class AccountUserAdmin(UserAdmin):
    inlines = [AccountInline]
    actions = ["sign_out_everywhere", "unlock_sign_in"]

    @admin.action(description="Sign the selected people out everywhere")
    def sign_out_everywhere(self, request, queryset) -> None:
        # Their sessions and tokens end here and now; the sites are told by the worker, so the
        # page answers at once whether 1 or 10,000 people are selected and whatever the sites do.
        people = list(queryset.values_list("pk", flat=True))
        queued = people_sign_out_everywhere(people)
        self.message_user(
            request,
            format_html(
                "Signed out {} person(s) at the IdP. Their sites are being notified in the background: "
                '{} back-channel logout(s) queued for the worker (see <a href="{}">back-channel logout '
                "deliveries</a>).",
                len(people),
                queued,
                deliveries_url(),
            ),
        )

    @admin.action(description="Unlock sign-in for the selected people (forget their failed sign-ins)")
    def unlock_sign_in(self, request, queryset) -> None:
        # An address locked out by its own limit is unlocked with `manage.py axes_reset_ip`.
        for user in queryset:
            lockout.account_unlock(user.get_username())
        self.message_user(request, f"Unlocked sign-in for {queryset.count()} person(s).")


def undelivered_links(application_id: int, pending: int, failed: int) -> str:
    if not pending and not failed:
        return "none"
    return format_html(
        '<a href="{}">{} pending</a>, <a href="{}">{} failed</a>',
        deliveries_url(application_id, Status.PENDING),
        pending,
        deliveries_url(application_id, Status.FAILED),
        failed,
    )


class LogoutSettingsInline(admin.StackedInline):
    model = ApplicationLogout
    can_delete = False
    verbose_name_plural = "Back-channel logout"
    fields = ["backchannel_logout_uri", "backchannel_logout_session_required", "undelivered"]
    readonly_fields = ["undelivered"]
    # A URI typed without its scheme is taken as https (Django 6's default; 5.2 warns otherwise).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    @admin.display(description="not delivered yet")
    def undelivered(self, logout: ApplicationLogout) -> str:
        if logout.pk is None:
            return "none"
        counts = BackchannelDelivery.objects.filter(application_id=logout.application_id).aggregate(
            pending=Count("pk", filter=Q(status=Status.PENDING)), failed=Count("pk", filter=Q(status=Status.FAILED))
        )
        return undelivered_links(logout.application_id, counts["pending"], counts["failed"])


class ApplicationAdmin(toolkit_admin.ApplicationAdmin):
    """The toolkit's application admin, pre-filled for what this IdP serves.

    Named in OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"]. A new application starts as a
    confidential web client of the authorization code flow with RS256-signed ID tokens; the
    toolkit's blank signing algorithm would mean "no OpenID Connect", a surprise for a site
    that wants to sign people in. The list shows each application's back-channel logouts not
    delivered yet (pending, failed), linked to the deliveries' list.
    """

    inlines = [LogoutSettingsInline]
    list_display = (*toolkit_admin.ApplicationAdmin.list_display, "undelivered")
    actions = ["retry_backchannel_logouts_now"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                undelivered_pending=Count(
                    "backchannel_deliveries", filter=Q(backchannel_deliveries__status=Status.PENDING)
                ),
                undelivered_failed=Count(
                    "backchannel_deliveries", filter=Q(backchannel_deliveries__status=Status.FAILED)
                ),
            )
        )

    @admin.display(description="back-channel logouts not delivered")
    def undelivered(self, application) -> str:
        return undelivered_links(application.pk, application.undelivered_pending, application.undelivered_failed)

    @admin.action(
        description="Retry now the back-channel logouts not delivered to the selected applications",
        permissions=["change"],
    )
    def retry_backchannel_logouts_now(self, request, queryset) -> None:
        queued = backchannel.retry_now(BackchannelDelivery.objects.filter(application__in=queryset))
        self.message_user(request, f"Queued {queued} back-channel logout(s) for the worker: tried again now.")

    def get_changeform_initial_data(self, request):
        Application = get_application_model()
        return {
            "client_type": Application.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "algorithm": Application.RS256_ALGORITHM,
            **super().get_changeform_initial_data(request),
        }


@admin.register(BackchannelDelivery)
class BackchannelDeliveryAdmin(admin.ModelAdmin):
    """The back-channel logouts left to the worker: pending (queued, or waiting out a backoff),
    failed (given up) and delivered, per application, with the person and the last error.

    Read-only: the IdP and the worker write them. "Retry now" queues the selected ones again at
    once. No token is stored, and neither the login session's id nor the worker's job is shown.
    """

    list_display = ["created", "person", "application", "status", "attempts", "last_error", "next_attempt"]
    list_filter = ["status", "application"]
    list_select_related = ["application", "login_session__user"]
    search_fields = ["login_session__user__username", "application__name", "application__client_id"]
    ordering = ["-created", "-pk"]
    date_hierarchy = "created"
    fields = ["application", "person", "status", "attempts", "last_error", "created", "last_attempt", "next_attempt"]
    readonly_fields = fields
    actions = ["retry_now"]

    @admin.display(description="person", ordering="login_session__user__username")
    def person(self, delivery: BackchannelDelivery) -> str:
        return delivery.login_session.user.get_username()

    @admin.action(description="Retry the selected deliveries now", permissions=["retry"])
    def retry_now(self, request, queryset) -> None:
        queued = backchannel.retry_now(queryset)
        self.message_user(request, f"Queued {queued} back-channel logout(s) for the worker: tried again now.")

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm("provider.change_backchanneldelivery")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # shown read-only, to whoever may view them

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleted with their login session, by housekeeping
