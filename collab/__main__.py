"""`python -m collab`: the same as the `collab` command."""

from collab.cli import main

raise SystemExit(main())
