"""``python -m jaxnets.cli``: the ``jaxnets`` command."""

from jaxnets.cli import main

raise SystemExit(main())
