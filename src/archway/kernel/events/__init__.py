"""Integration events: CloudEvents, the transactional outbox and inbox, the bus and the relay.

    cloudevent.py   build, serialize and parse CloudEvents 1.0 (structured JSON, traceparent)
    tables.py       table factories: each context owns its ``_outbox``, ``_inbox``,
                    ``_dead_letters``
    outbox.py       append an event in the caller's transaction
    inbox.py        run a consumer's effect at most once per event id
    dead_letters.py park an event a consumer keeps failing on; list and retry parked events
    bus.py          the ``EventBus`` port (start, subscribe, publish, pending, stop), in-process
    relay.py        publish committed outbox rows, in order, at least once
    lease.py        one relay at a time per outbox, across processes
    metrics.py      published/consumed/failure counters, outbox backlog, projection lag

Nothing here imports a context: each context passes its own tables in.
"""
