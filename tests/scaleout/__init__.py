"""Scale-out: artifact store (local, S3), Pipes training entrypoint, deployment profiles."""
