"""Examples of applications built on collab (served with `collab serve --app ...`)."""
