"""`python -m pipeline.cli` = `medpipe`."""

import sys

from pipeline.cli.commands import main

sys.exit(main())
