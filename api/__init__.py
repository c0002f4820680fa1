"""The REST API under /api/: its routes, schema and docs page.

The resources themselves live with their concerns: conversations/api.py, accounts/api.py, usage/api.py; the
error shape, pagination, throttle and parser they share are core.errors and core.rest.
"""
