from allauth.account import views as allauth_views
from django.urls import include, path

from accounts import views
from accounts.lockout import slowed

urlpatterns = [
    # The names the pages and other apps use; allauth's own (account_login, ...) reach the same views.
    path("signup/", views.SignupView.as_view(), name="signup"),
    path("login/", slowed(allauth_views.LoginView.as_view()), name="login"),
    path("logout/", allauth_views.LogoutView.as_view(), name="logout"),
    path("profile/", views.profile, name="profile"),
    path("profile/keys/<int:key_id>/revoke/", views.revoke_key, name="revoke_key"),
    path("security/", views.security, name="security"),
    path("invites/", views.invite_links, name="invites"),
    path("invite/<str:token>/", views.accept_invite, name="accept_invite"),
    path("groups/", views.my_groups, name="groups"),
    path("groups/<int:group_id>/", views.group_page, name="group"),
    # Password change and reset, two-factor authentication, single sign-on (allauth).
    path("", include("allauth.urls")),
]
