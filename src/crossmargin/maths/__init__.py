"""Every formula, once, one concept per module; ``risk`` is the account-risk kernel.

Per-position formulas are compiled scalar functions (numba) that the fused loops call directly,
with numpy wrappers for array callers, so one account (``evaluate``) and a million
(``RiskBook``) run the same arithmetic. ``money`` holds the exact (Decimal) twins the ledger
needs.
"""
