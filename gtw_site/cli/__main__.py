"""`python -m gtw_site.cli …`: the same as the `gtw` console script."""

from gtw_site.cli import main

raise SystemExit(main())
