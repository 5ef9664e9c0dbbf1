"""Fault suite: the real adapters against an emulated provider ledger.

``emulator`` answers at the HTTP layer like Toss Payments, NICEPAY and PortOne do (with the
answer builders of each adapter's own conformance kit), keeps the authoritative ledger of
every charge and cancel, and misbehaves per request from a schedule; ``runner`` pays a
schedule of orders through a :class:`payfallback.Router` over those adapters, crashes and
restarts it on the same SQLite journal, runs ``recover()`` and holds the ledger against the
journal; ``campaign`` runs thousands of schedules from the command line.
"""
