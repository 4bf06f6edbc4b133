"""Downloads: the selection, its cache key, the buffer or stream strategy and the cache copy."""
