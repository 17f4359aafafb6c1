"""holevision.runtime."""
