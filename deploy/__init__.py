"""Running the service beyond one process: the engines it can share and a local cluster."""
