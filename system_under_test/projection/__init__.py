"""The order read model: a crash-safe consumer of orders:events, and its rebuild from the stream."""
