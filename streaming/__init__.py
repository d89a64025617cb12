"""Kafka: the client seam (``streaming.kafka``) and a local single-node broker (``streaming.local_broker``)."""
