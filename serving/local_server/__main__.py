"""`python -m serving.local_server ...` (see serving/local_server/cli.py)."""

import sys

from serving.local_server.cli import main

sys.exit(main())
