"""YourPG adapter for payfallback (built from payfallback's adapter template).

Install ``payfallback-yourpg`` and build it by name::

    provider = load_provider("yourpg", secret_key=SecretStr("..."))

What it does: say which flows (redirect checkout, billing-key charge), which lookups
(by transaction id, by our attempt id), cancels (full, partial; the tax-free share) and
void it offers.

Pages followed: list, per operation, the provider page it follows (URL and date read) and
what was taken from it — host, authentication, paths, fields and their limits, the result
codes — and mark what could not be confirmed (sure / likely / uncertain), with the safe
choice taken instead.

What proves a payment did not go through: which of ``Capabilities.proofs`` the provider
offers (same-key replay, void, its record of a failed transaction, "not found" after a
documented settle window), each with its source — see :class:`YourPg`.
"""

from payfallback_yourpg._ops import BASE_URL, LABEL, NAME, YourPg
from payfallback_yourpg._wire import CODE_TABLE

__all__ = ["BASE_URL", "CODE_TABLE", "LABEL", "NAME", "YourPg"]
