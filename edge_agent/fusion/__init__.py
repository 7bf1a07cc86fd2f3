"""Which ops a runtime fuses into one kernel: decided by timing, backed by the runtime's own evidence, stored as a
versioned rule table in the bundle (rules/*.json). The LUT predictor partitions models into kernels with these rules."""
