"""Workers: the only package that imports dramatiq and APScheduler."""
