"""The catalog's outbox, inbox and dead letters, in the catalog's own metadata (and so its own
database).

Kept apart from :mod:`archway.catalog.tables` so that the event plumbing and the product tables
change independently; both register on ``catalog_metadata``, which migrations compare against.
"""

from __future__ import annotations

from archway.catalog.tables import catalog_metadata
from archway.kernel.events.tables import dead_letter_table, inbox_table, outbox_table

catalog_outbox = outbox_table(catalog_metadata, "catalog")
catalog_inbox = inbox_table(catalog_metadata, "catalog")
catalog_dead_letters = dead_letter_table(catalog_metadata, "catalog")
