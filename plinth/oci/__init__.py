"""OCI images without a Docker engine: reproducible layers, config and manifest, push to a
registry v2, and OCI archives for a node's image store (`builds` says which images exist)."""
