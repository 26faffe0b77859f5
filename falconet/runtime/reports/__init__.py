"""Read-only computations over stored documents: Kestra 0.x statistics and 1.x dashboards."""
