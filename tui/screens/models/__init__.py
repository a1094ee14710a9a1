"""The Models screen (F3): its screen, table, worker messages and reports."""
