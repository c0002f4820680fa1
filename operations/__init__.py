"""Operations: Prometheus metrics (/metrics), OpenTelemetry traces and JSON logs of the /v1 API and the chat.

Placed just above `usage` and below `gateway`: the gateway and the chat call its hooks
(operations.observe); what it shows of higher apps (each deployment's circuit) they register in
their AppConfig.ready().
"""
