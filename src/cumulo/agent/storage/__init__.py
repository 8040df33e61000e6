"""Primary storage on a host: directory pools holding template caches and qcow2 volumes."""
