"""jobflow's implementation, by layer (see docs/architecture.md); public names live in jobflow.*."""
