"""The order system under test: services, a Temporal saga and Redis Streams as the source of truth."""
