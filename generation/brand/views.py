"""The Brand page: every brand kit, read-only, as designers need to know it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ..http import Request
from .selectors import kit_cards


@require_GET
@login_required
def brand(request: Request) -> HttpResponse:
    """Palette, background, references, LoRA versions, word rules and icon canvas of each kit,
    with its versions and what changed (staff edit kits in the admin)."""
    return render(request, "generation/brand.html", {"cards": kit_cards()})
