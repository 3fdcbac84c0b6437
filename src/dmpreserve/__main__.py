"""``python -m dmpreserve``."""

from dmpreserve.cli import main

raise SystemExit(main())
