from django.urls import path

from tools import views

urlpatterns = [
    path("", views.add_server, name="mcp_add"),
    path("<int:server_id>/test/", views.test_server, name="mcp_test"),
    path("<int:server_id>/remove/", views.remove_server, name="mcp_remove"),
]
