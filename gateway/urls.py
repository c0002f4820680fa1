from django.urls import URLPattern, URLResolver, path, re_path

from gateway.anthropic_messages.views import count_message_tokens, create_message
from gateway.chat_completions.views import chat_completions
from gateway.embeddings.views import embeddings
from gateway.endpoint import not_found
from gateway.files_api import views as files
from gateway.gemini_api.views import GEMINI_METHOD, model_method
from gateway.model_list.views import model, models
from gateway.responses_api.views import create_response, response_input_items, stored_response
from gateway.text_completions.views import completions
from gateway.vector_stores import views as stores

urlpatterns: list[URLPattern | URLResolver] = [
    path("chat/completions", chat_completions, name="v1-chat-completions"),
    path("completions", completions, name="v1-completions"),
    path("embeddings", embeddings, name="v1-embeddings"),
    path("messages", create_message, name="v1-messages"),
    path("messages/count_tokens", count_message_tokens, name="v1-messages-count-tokens"),
    path("responses", create_response, name="v1-responses"),
    path("responses/<str:response_id>", stored_response, name="v1-response"),
    path("responses/<str:response_id>/input_items", response_input_items, name="v1-response-input-items"),
    path("files", files.files, name="v1-files"),
    path("files/<str:file_id>", files.file, name="v1-file"),
    path("files/<str:file_id>/content", files.file_content, name="v1-file-content"),
    path("vector_stores", stores.vector_stores, name="v1-vector-stores"),
    path("vector_stores/<str:store_id>", stores.vector_store, name="v1-vector-store"),
    path("vector_stores/<str:store_id>/search", stores.search, name="v1-vector-store-search"),
    path("vector_stores/<str:store_id>/files", stores.store_files, name="v1-vector-store-files"),
    path("vector_stores/<str:store_id>/files/<str:file_id>", stores.store_file, name="v1-vector-store-file"),
    path("vector_stores/<str:store_id>/file_batches", stores.create_batch, name="v1-vector-store-file-batches"),
    path("vector_stores/<str:store_id>/file_batches/<str:batch_id>", stores.batch, name="v1-vector-store-file-batch"),
    path(
        "vector_stores/<str:store_id>/file_batches/<str:batch_id>/cancel",
        stores.cancel_batch,
        name="v1-vector-store-file-batch-cancel",
    ),
    path(
        "vector_stores/<str:store_id>/file_batches/<str:batch_id>/files",
        stores.batch_files,
        name="v1-vector-store-file-batch-files",
    ),
    path("models", models, name="v1-models"),
    # Gemini's methods under /v1 too: the google-genai SDKs call Gemini's API at v1 by default.
    re_path(GEMINI_METHOD, model_method, name="v1-model-method"),
    # Ids may contain '/': clients percent-encode it, the server decodes it back into the path.
    path("models/<path:model>", model, name="v1-model"),
    # Anything else under /v1 gets a 404 in its error shape, not an HTML page.
    re_path(r"^(?P<rest>.*)$", not_found),
]
