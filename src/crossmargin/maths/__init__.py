"""Pure numpy kernels: the only place a margin formula lives.

Every function takes arrays (one row or a million) and broadcasts over leading axes, so the
one-account API and the vectorised book share the same arithmetic.
"""
