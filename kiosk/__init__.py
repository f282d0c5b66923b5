"""The village-hall side of Maeul: what runs on the kiosk machine (agent, headless media endpoint)."""
