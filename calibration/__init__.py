"""holevision.calibration."""
