"""County notices: officials post to all or chosen villages; kiosks show them and report delivery."""
