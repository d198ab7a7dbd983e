"""docthemes Dagster layer: assets, resources, IO manager and Definitions over `pipeline`."""
