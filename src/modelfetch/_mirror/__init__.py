"""`MirrorSource`: a fleet's object-store bucket read through and written back."""
