"""Thin aiohttp handlers: parse and validate input, call a domain object, shape the response."""
