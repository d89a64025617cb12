"""Journey service: each pilgrim's journey across the agencies, and alerts when a step is overdue.

``state`` (pure rules, docs/journey-alerts.md), ``service`` (Kafka: read events, write alerts and the
changelog in one transaction), ``api`` (``GET /journeys/{pilgrim_key}``, CLI formatting), ``config``.
"""
