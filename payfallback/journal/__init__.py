"""Durable journals: the contract and the embedded SQLite implementation."""

from payfallback.journal._base import (
    AttemptInFlight,
    AttemptsOpen,
    CheckoutState,
    Journal,
    JournalCounts,
    OrderAlreadyPaid,
    TxnAlreadyRecorded,
)
from payfallback.journal.sqlite import SQLiteJournal

__all__ = [
    "AttemptInFlight",
    "AttemptsOpen",
    "CheckoutState",
    "Journal",
    "JournalCounts",
    "OrderAlreadyPaid",
    "SQLiteJournal",
    "TxnAlreadyRecorded",
]
