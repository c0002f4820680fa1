"""Our settings with channels' own in-memory layer, for bench/chat_sockets.py --compare-layer."""

from chatsite.settings import *  # noqa: F403

CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
