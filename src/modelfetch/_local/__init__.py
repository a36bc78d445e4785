"""Sources over local folders (`LocalDirSource`) and fall-through chains (`ChainSource`)."""
