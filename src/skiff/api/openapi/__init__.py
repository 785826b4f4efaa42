"""OpenAPI documents served at /openapi/v3 (what kubectl validates and explains with)."""
