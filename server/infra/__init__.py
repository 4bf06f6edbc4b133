"""Infrastructure with no HTTP in it: typed events, worker pools, Redis cluster link, metrics,
atomic writes, rendered bodies, sizes."""
