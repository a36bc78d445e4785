"""`CachedSource`, the async cache layer: single flight, memo, disk fast path, offline."""
