from django.urls import path

from conversations import file_views, share_views, views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:pk>/", views.chat, name="conversation"),
    path("s/<str:token>/", share_views.shared, name="shared"),
    path("shares/<int:share_id>/revoke/", share_views.revoke, name="revoke_share"),
    path("files/", file_views.upload, name="attachment-upload"),
    path("files/<int:pk>/", file_views.attachment, name="attachment"),
]
