"""inventory-service: reserve, commit and release stock atomically; never negative, never oversold."""
