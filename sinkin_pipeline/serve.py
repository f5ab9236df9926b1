"""`sinkin serve` (being written)."""
