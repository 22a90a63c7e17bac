"""order-service: accepts orders and starts one OrderSaga per order (workflow id = order id)."""
