"""``python -m leis.cli``: the same as the ``leis`` console script."""

from leis.cli import main

raise SystemExit(main())
