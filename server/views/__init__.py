"""Views that belong to no single domain: health, area home pages."""
