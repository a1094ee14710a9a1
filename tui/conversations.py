"""Conversations kept on disk."""
