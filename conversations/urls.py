from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:pk>/", views.chat, name="conversation"),
]
