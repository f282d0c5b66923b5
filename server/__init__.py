"""Maeul server: aiohttp app, signaling, SFU and the civic domain."""
