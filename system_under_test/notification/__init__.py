"""notification-service: one confirmation per completed order, durable in a stream; it also
listens on the live pub/sub channel to show what pub/sub alone would have delivered."""
