"""Test helpers that talk to the real broker and database."""
