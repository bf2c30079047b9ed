"""Admin: a person's subject identifier and verified-email flag, shown on the user page."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from provider.models import Account

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
