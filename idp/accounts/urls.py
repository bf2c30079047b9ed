"""URLs of the accounts app, included under /accounts/ next to the sign-in pages."""

from django.urls import path

from accounts import views

urlpatterns = [
    path("login/two-factor/", views.two_factor_verify, name="two-factor-verify"),
    path("two-factor/", views.two_factor, name="two-factor"),
    path("two-factor/enrol/", views.two_factor_enrol, name="two-factor-enrol"),
    path("two-factor/disable/", views.two_factor_disable, name="two-factor-disable"),
    path("two-factor/recovery-codes/", views.recovery_codes_regenerate, name="two-factor-recovery-codes"),
]
