"""Reads for the Brand page: each kit with what uses it, and its versions with what changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Prefetch

from ..models import AssetPreset, BrandKit, BrandLora, BrandReference, ReviewStatus, Submission

EXAMPLES = 6  # approved library items a kit's card shows


@dataclass
class Version:
    number: int
    when: Any
    who: str
    changes: list[str] = field(default_factory=list)  # "Palette: #0f6cbd, #107c10 → #0f6cbd"
    reason: str = ""


@dataclass
class KitCard:
    kit: BrandKit
    asset_types: list[AssetPreset]
    references: list[BrandReference]
    loras: list[tuple[AssetPreset, BrandLora, float]]  # the published versions, per asset type
    versions: list[Version]
    examples: list[Any] = field(default_factory=list)  # approved library items of its asset types

    @property
    def padding(self) -> int:
        """The safe area in percent of a side (the page draws it on a 100-unit square)."""
        return round(self.kit.safe_area * 100)

    @property
    def inner(self) -> int:
        return 100 - 2 * self.padding


def kit_cards() -> list[KitCard]:
    presets = AssetPreset.objects.filter(enabled=True).prefetch_related("preset_loras__lora")
    kits = BrandKit.objects.prefetch_related(
        Prefetch("asset_types", queryset=presets),
        Prefetch("brand_references", queryset=BrandReference.objects.filter(enabled=True)),
    )
    return [_card(kit) for kit in kits]


def _card(kit: BrandKit) -> KitCard:
    asset_types = list(kit.asset_types.all())
    loras = [
        (preset, link.lora, link.strength)
        for preset in asset_types
        for link in preset.preset_loras.all()
        if link.lora.enabled
    ]
    return KitCard(kit, asset_types, list(kit.brand_references.all()), loras, versions(kit), examples(asset_types))


def examples(asset_types: list[AssetPreset]) -> list[Submission]:
    """The newest approved, unretired library items of these asset types: the kit in use."""
    items = Submission.objects.filter(
        status=ReviewStatus.APPROVED, retired_at__isnull=True, image__job__preset__in=asset_types
    )
    return list(items.select_related("image__job").order_by("-decided_at")[:EXAMPLES])


def versions(kit: BrandKit) -> list[Version]:
    """Newest first: one entry per version (a save that changed nothing kept is folded into it)."""
    records = list(kit.history.select_related("history_user").order_by("-history_date", "-history_id"))
    found: dict[int, Version] = {}
    for record, before in zip(records, [*records[1:], None], strict=True):
        version = found.setdefault(
            record.version,
            Version(record.version, record.history_date, _who(record), reason=record.history_change_reason or ""),
        )
        if before is not None:
            version.changes[:0] = _changes(record, before)
    return list(found.values())


def _who(record: Any) -> str:
    user = record.history_user
    return (user.get_full_name() or user.username) if user else "the studio"


def _changes(record: Any, before: Any) -> list[str]:
    delta = record.diff_against(before, included_fields=list(BrandKit.VERSIONED_FIELDS))
    return [f"{_label(c.field)}: {_shown(c.old)} → {_shown(c.new)}" for c in delta.changes]


def _label(name: str) -> str:
    field = BrandKit._meta.get_field(name)
    return str(getattr(field, "verbose_name", name)).capitalize()


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value) if value not in ("", None) else "none"
