"""Test helpers: a scriptable fake provider and the adapter conformance suite."""
