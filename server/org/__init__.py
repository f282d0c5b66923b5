"""The county's organisation: departments that answer requests and hold meetings."""
