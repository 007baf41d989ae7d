from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from generation import health
from generation.api import api
from generation.forms import LoginForm

# A database outage answers 503 with Retry-After, not a 500 (generation.health.server_error).
handler500 = "generation.health.server_error"

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True, authentication_form=LoginForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("oauth/", include("social_django.urls", namespace="social")),
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("health/", health.health, name="health"),
    path("", include("generation.urls")),
]
