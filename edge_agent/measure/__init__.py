"""The measurement protocol: warm-up, windows, interleaving, child-process isolation, validity and retries."""
