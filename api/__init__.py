"""The REST API under /api/: its one error shape, pagination, throttling, parsing, schema and routes.

The resources themselves live with their concerns: conversations/api.py, accounts/api.py, usage/api.py.
"""
