"""Profiles: the customer record, its identities and the history of its attributes."""
