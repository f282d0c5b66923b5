""" "Call the county office": a kiosk rings the officials on duty; the first to answer gets a
one-to-one video call; unanswered calls fall back to a recorded request."""
