from django.urls import URLPattern, URLResolver, path, re_path

from gateway import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("chat/completions", views.chat_completions, name="v1-chat-completions"),
    path("completions", views.completions, name="v1-completions"),
    path("embeddings", views.embeddings, name="v1-embeddings"),
    path("messages", views.create_message, name="v1-messages"),
    path("messages/count_tokens", views.count_tokens, name="v1-messages-count-tokens"),
    path("responses", views.create_response, name="v1-responses"),
    path("responses/<str:response_id>", views.stored_response, name="v1-response"),
    path("responses/<str:response_id>/input_items", views.response_input_items, name="v1-response-input-items"),
    path("models", views.models, name="v1-models"),
    # Ids may contain '/': clients percent-encode it, the server decodes it back into the path.
    path("models/<path:model>", views.model, name="v1-model"),
    # Anything else under /v1 gets a 404 in OpenAI's error shape, not an HTML page.
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
