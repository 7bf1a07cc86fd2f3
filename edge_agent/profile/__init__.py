"""`edge-agent profile`: many models, one session, the reference interleaved with each, resumable."""
