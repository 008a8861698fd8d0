"""Normalize: the canonical transaction schema every format maps to, asset symbols, identity."""
