"""Demo products for ``archway dev`` and ``archway seed``: deterministic, and safe to rerun."""

from __future__ import annotations

from typing import Any

from archway.catalog.domain import ProductDraft
from archway.catalog.service import WRITE_SCOPE, CatalogService
from archway.kernel.auth.principal import Principal
from archway.kernel.errors import Conflict
from archway.kernel.money import Money

SEEDER = Principal("archway-seed", scopes=frozenset({WRITE_SCOPE}), roles=frozenset({"admin"}))

_CATEGORIES: dict[str, tuple[str, ...]] = {
    "books": ("Field Guide", "Atlas", "Cookbook", "Novel", "Anthology", "Handbook"),
    "coffee": ("Espresso Roast", "Filter Roast", "Decaf", "Single Origin", "House Blend"),
    "games": ("Board Game", "Card Game", "Puzzle", "Dice Set", "Strategy Game"),
    "garden": ("Trowel", "Watering Can", "Seed Kit", "Pruning Shears", "Planter"),
    "kitchen": ("Chef Knife", "Cast Iron Pan", "Cutting Board", "Kettle", "Whisk"),
    "music": ("Vinyl Record", "Ukulele", "Harmonica", "Metronome", "Songbook"),
}
_EDITIONS = ("Classic", "Deluxe", "Travel", "Studio", "Heritage", "Compact")


def demo_drafts(count: int = 60) -> list[tuple[ProductDraft, int]]:
    """``count`` products spread over every category, each with its stock count (10–200).

    Everything derives from the position, so every run and every machine seeds the same shop.
    """
    categories = list(_CATEGORIES)
    drafts: list[tuple[ProductDraft, int]] = []
    for n in range(count):
        category = categories[n % len(categories)]
        kinds = _CATEGORIES[category]
        kind = kinds[(n // len(categories)) % len(kinds)]
        edition = _EDITIONS[(n // (len(categories) * len(kinds))) % len(_EDITIONS)]
        draft = ProductDraft(
            sku=f"{category[:3].upper()}-{n + 1:04d}",
            name=f"{edition} {kind}",
            description=f"A {edition.lower()} {kind.lower()} from the Archway {category} shelf.",
            category=category,
            price=Money(499 + (n * 371) % 9500, "EUR"),
        )
        drafts.append((draft, 10 + (n * 37) % 191))
    return drafts


async def seed_catalog(service: CatalogService[Any], count: int = 60) -> int:
    """Create the demo products that are missing (matched by sku), through the same use cases
    an admin calls; returns how many were created."""
    created = 0
    for draft, on_hand in demo_drafts(count):
        try:
            product = await service.create_product(SEEDER, draft)
        except Conflict:
            continue
        await service.set_stock(SEEDER, product.id, on_hand)
        created += 1
    return created
