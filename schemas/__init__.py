"""Event schemas (``avro/``), their catalogue of versions and ids, and the Avro codec."""
