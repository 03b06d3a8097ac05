"""Events: behaviour and profile updates coming in, written set-wise, deduplicated."""
