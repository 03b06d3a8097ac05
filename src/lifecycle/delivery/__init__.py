"""Delivery: message rows, the send use case, and the providers behind one interface."""
