"""The Docs screen (F4): its screen, the list of indexed documents, the folder tree and their messages."""
