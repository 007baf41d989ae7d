"""The REST API (/api/v1/) for the Figma plugin and the CLI: the brief's async job pattern.

django-ninja generates the OpenAPI schema (/api/v1/openapi.json) and the docs page
(/api/v1/docs) from these signatures. Only personal tokens authenticate (Authorization:
Bearer bst_...); cookies never do, so another origin cannot ride on a signed-in browser.
Every error is JSON {"message": ..., "field": ...}; another user's ids are 404.

One module per resource, each with its own router: jobs, images, catalogue (asset types and
models), library (history and favorites); `tokens` authenticates, `errors` answers.
"""

from .app import api

__all__ = ["api"]
