"""Campaigns: YAML definitions, their versions, and the journeys that run them."""
