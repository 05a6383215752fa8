"""Formats only: portfolio documents (ccxt structures included) in, typed results out as JSON."""

from crossmargin.io.document import Document, parse_document, read_document
from crossmargin.io.results import to_data, to_json

__all__ = ["Document", "parse_document", "read_document", "to_data", "to_json"]
