"""Routing core: match journey events to subscriptions and deliver them to each subscriber's target."""
