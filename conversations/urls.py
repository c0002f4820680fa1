from django.urls import path

from conversations import file_views, knowledge_views, share_views, views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/<int:pk>/", views.chat, name="conversation"),
    path("s/<str:token>/", share_views.shared, name="shared"),
    path("shares/<int:share_id>/revoke/", share_views.revoke, name="revoke_share"),
    path("files/", file_views.upload, name="attachment-upload"),
    path("files/<int:pk>/", file_views.attachment, name="attachment"),
    path("c/<int:pk>/knowledge/", knowledge_views.conversation_knowledge, name="conversation-knowledge"),
    path("knowledge/", knowledge_views.index, name="knowledge"),
    path("knowledge/<str:store_id>/", knowledge_views.store_page, name="knowledge-store"),
    path("knowledge/<str:store_id>/rename/", knowledge_views.rename, name="knowledge-rename"),
    path("knowledge/<str:store_id>/delete/", knowledge_views.delete, name="knowledge-delete"),
    path("knowledge/<str:store_id>/projects/", knowledge_views.set_projects, name="knowledge-projects"),
    path("knowledge/<str:store_id>/files/", knowledge_views.store_files, name="knowledge-files"),
    path(
        "knowledge/<str:store_id>/files/<str:file_id>/delete/",
        knowledge_views.delete_file,
        name="knowledge-file-delete",
    ),
]
