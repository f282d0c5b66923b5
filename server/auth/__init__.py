"""Who may do what: accounts (officials, admins), kiosk devices, sessions, CSRF and roles."""
