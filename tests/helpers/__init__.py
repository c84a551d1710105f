"""Test kits shared across test modules (import as tests.helpers.<name>)."""
