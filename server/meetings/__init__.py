"""Scheduled meetings: agenda linked to petitions, invitations, attendance, minutes, the record."""
