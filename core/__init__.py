"""The bottom layer every app may import: database helpers, the clock, input parsing, typed settings from the
environment, the request id, the REST API's error shape and its DRF base classes. It imports no app."""
