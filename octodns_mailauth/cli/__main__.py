"""`python -m octodns_mailauth.cli`."""

import sys

from . import main

sys.exit(main())
