"""Values, policies and small runtime helpers every layer shares: no I/O of their own."""
