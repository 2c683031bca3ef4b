"""Streaming asset gateway: an aiohttp front for object storage with expiring share tokens."""

__version__ = "0.1.0"
