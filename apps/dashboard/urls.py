from django.urls import path

from apps.accounts import views as account_views

from . import views

app_name = "dashboard"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("logout/", account_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.audit, name="audit"),
    path("health/", views.health_page, name="health"),
]
