"""The NinjaAPI object: authentication, error handlers and one router per resource."""

from ninja import NinjaAPI

from . import catalogue, errors, images, inputs, jobs, library, review, verify
from .errors import JsonParser
from .tokens import TokenAuth

api = NinjaAPI(
    title="Brand Studio API",
    version="1",
    urls_namespace="api-v1",
    auth=TokenAuth(),
    parser=JsonParser(),
    description="Generate on-brand images from scripts, the CLI and the Figma plugin. "
    "Authenticate with a personal token (Profile › API tokens) as `Authorization: Bearer <token>`.",
)
errors.install(api)
api.add_router("", jobs.router)
api.add_router("", images.router)
api.add_router("", catalogue.router)
api.add_router("", library.router)
api.add_router("", inputs.router)
api.add_router("", verify.router)
api.add_router("", review.router)
