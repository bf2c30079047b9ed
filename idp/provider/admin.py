"""Admin: people (with their subject identifier and sign-in lock-out) and OAuth applications."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from oauth2_provider import admin as toolkit_admin
from oauth2_provider.models import get_application_model

from provider import backchannel, lockout
from provider.login_sessions import user_sign_out_everywhere
from provider.models import Account, ApplicationLogout

User = get_user_model()


class AccountInline(admin.StackedInline):
    model = Account
    can_delete = False
    readonly_fields = ["sub"]
    fields = ["sub", "email_verified"]


admin.site.unregister(User)


@admin.register(User)
class AccountUserAdmin(UserAdmin):
    inlines = [AccountInline]
    actions = ["sign_out_everywhere", "unlock_sign_in"]

    @admin.action(description="Sign the selected people out everywhere")
    def sign_out_everywhere(self, request, queryset) -> None:
        for user in queryset:
            backchannel.notify(user_sign_out_everywhere(user))
        self.message_user(request, f"Signed out {queryset.count()} person(s) at the IdP and every site.")

    @admin.action(description="Unlock sign-in for the selected people (forget their failed sign-ins)")
    def unlock_sign_in(self, request, queryset) -> None:
        # An address locked out by its own limit is unlocked with `manage.py axes_reset_ip`.
        for user in queryset:
            lockout.account_unlock(user.get_username())
        self.message_user(request, f"Unlocked sign-in for {queryset.count()} person(s).")


class LogoutSettingsInline(admin.StackedInline):
    model = ApplicationLogout
    can_delete = False
    verbose_name_plural = "Back-channel logout"


class ApplicationAdmin(toolkit_admin.ApplicationAdmin):
    """The toolkit's application admin, pre-filled for what this IdP serves.

    Named in OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"]. A new application starts as a
    confidential web client of the authorization code flow with RS256-signed ID tokens; the
    toolkit's blank signing algorithm would mean "no OpenID Connect", a surprise for a site
    that wants to sign people in.
    """

    inlines = [LogoutSettingsInline]

    def get_changeform_initial_data(self, request):
        Application = get_application_model()
        return {
            "client_type": Application.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "algorithm": Application.RS256_ALGORITHM,
            **super().get_changeform_initial_data(request),
        }
