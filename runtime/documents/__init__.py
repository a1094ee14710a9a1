"""pgpt.runtime.documents: reading, chunking, indexing and searching documents, and answers from them."""
