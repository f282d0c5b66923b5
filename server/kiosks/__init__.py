"""Village-hall kiosk devices: enrollment, device tokens, revocation."""
