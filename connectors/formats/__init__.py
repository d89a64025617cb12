"""Parsers for the wire formats agencies send (EDIFACT PAXLST, ICAO 9303 MRZ, OpenTravel XML).

Each parser turns bytes into plain, typed records and knows nothing of events, Kafka or Avro.
Problems are reported with :mod:`connectors.rejections`.
"""
