"""Command-line client for Brand Studio."""
