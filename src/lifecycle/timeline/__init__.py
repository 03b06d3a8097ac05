"""Timeline: a read model that tells one profile's story; it writes nothing."""
