"""What ``/api/v1/plugins`` and the UI show of the registered plugin types: groups, schemas and docs."""
