"""holevision.export."""
