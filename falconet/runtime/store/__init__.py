"""Store backends: ``sqlite`` (default, durable) and ``memory`` (tests, fake clock)."""
