"""payfallback: keep selling when a payment provider goes down."""
