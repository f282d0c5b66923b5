"""Maeul's OpenAPI document: ``spec`` is the vocabulary every domain's ``openapi_spec`` declares its
endpoints in (a leaf module), ``document`` assembles them and serves ``/api/v1/openapi.json``.

This package's ``__init__`` imports nothing, so importing ``server.openapi.spec`` from a domain does
not load the aggregator (which imports every domain).
"""
