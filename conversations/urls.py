from django.urls import path

from conversations import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:pk>/", views.chat, name="conversation"),
    path("chat/api/conversations/", views.ConversationList.as_view(), name="conversation-list"),
    path("chat/api/conversations/<int:pk>/", views.ConversationDetail.as_view(), name="conversation-detail"),
]
