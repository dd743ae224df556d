"""Monitoring models (targets, checks, samples, alerts) arrive with the monitoring issues."""
