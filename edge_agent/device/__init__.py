"""Device state: fingerprint, readiness checks, per-item snapshots and tuning, all read through one SysRoot."""
