"""Floor 2, analysis: statistics over replications, closed forms, validation, calibration."""
