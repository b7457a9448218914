"""`python -m api` runs the ivrgate command line."""

from api.cli.main import main

raise SystemExit(main())
