from django.urls import path

from conversations import file_views, views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:pk>/", views.chat, name="conversation"),
    path("files/", file_views.upload, name="attachment-upload"),
    path("files/<int:pk>/", file_views.attachment, name="attachment"),
]
