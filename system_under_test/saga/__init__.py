"""The OrderSaga: a Temporal workflow with compensations, appending every state change to Redis Streams."""
