"""Domain operations, independent of the storage backend."""
