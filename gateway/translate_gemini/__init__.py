"""Google's Gemini API <-> OpenAI's chat completions: pure translations, both ways.

A Gemini client (gemini-cli, the google-genai SDKs) calling a model whose upstream speaks OpenAI's
format (or Anthropic's, through chat):

    body = gemini_to_chat(request, stream=...)              # GenerateContentRequest -> chat body
    answer = chat_completion_to_gemini(completion, model)   # chat.completion -> GenerateContentResponse
    stream = ChatToGeminiStream(model)                      # chat chunks -> Gemini's stream events

An OpenAI client (or a Responses or Anthropic one, through chat) calling a model on Gemini:

    body = chat_to_gemini(request, max_tokens=cap)          # ChatCompletionRequest -> generateContent body
    completion = gemini_to_chat_completion(payload)         # GenerateContentResponse -> chat.completion
    stream = GeminiToChatStream()                           # Gemini's stream events -> chat chunks

and our errors in Google's shape (`google_error`). Nothing here does I/O or reads the catalogue.
Tool calls keep their ids both ways (made up when Gemini gave none, and matched to their responses
by name), and a function call's thought signature rides on the OpenAI tool call as
`extra_content.google.thought_signature`, to go back to Gemini with it on the next turn.
"""

from gateway.translate_gemini.answers import chat_completion_to_gemini, gemini_to_chat_completion
from gateway.translate_gemini.common import google_error, usage_to_gemini, usage_to_openai
from gateway.translate_gemini.requests import chat_to_gemini, gemini_to_chat, json_schema
from gateway.translate_gemini.streams import ChatToGeminiStream, GeminiToChatStream

__all__ = [
    "ChatToGeminiStream",
    "GeminiToChatStream",
    "chat_completion_to_gemini",
    "chat_to_gemini",
    "gemini_to_chat",
    "gemini_to_chat_completion",
    "google_error",
    "json_schema",
    "usage_to_gemini",
    "usage_to_openai",
]
