"""The quick-start demo: sample agency feeds run through a local hub."""
