"""Delivery providers behind one small interface; see :mod:`.base`."""
