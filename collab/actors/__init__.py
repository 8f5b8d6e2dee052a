"""Built-in actors (the Yjs Document) and their pure, loop-free helpers."""
