"""Judge-free likelihood probes and the contrast set they and the judge calibration use."""
