"""`python -m api` runs the ivrgate command line."""

from api.cli import main

raise SystemExit(main())
