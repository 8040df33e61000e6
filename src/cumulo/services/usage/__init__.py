"""Metering: usage events written with each billable change, aggregated into usage records."""
