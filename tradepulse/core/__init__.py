"""Shared building blocks used by every app: env parsing, base models, jobs, events, API base."""
