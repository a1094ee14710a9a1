"""The client side of pgpt-serve: the engine the app and the CLI use instead of a loaded model, its
errors, and the progress of an upload the server is indexing."""
