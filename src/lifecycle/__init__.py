"""lifecycle: a lifecycle messaging engine (profiles, events, campaigns, delivery)."""

__version__ = "0.1.0"
