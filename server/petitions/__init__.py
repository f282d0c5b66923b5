"""Civic requests (민원): pure domain rules — legal deadlines, the status machine, media checks,
receipt numbers and personal-data masking. Nothing here touches the database or the network."""
