"""Durable journals: the contract and the embedded SQLite implementation."""

from payfallback.journal._base import AttemptInFlight, Journal, JournalCounts, OrderAlreadyPaid

__all__ = ["AttemptInFlight", "Journal", "JournalCounts", "OrderAlreadyPaid"]
