"""Agency connectors: raw agency feeds in, typed journey events out.

A connector never touches Kafka or Avro bytes; the runtime (``connectors.runtime``) encodes what a
connector yields and publishes it.
"""
