"""`python -m labelwise_simulate`, the same as `labelwise-simulate`."""

import sys

from labelwise_simulate.cli import main

sys.exit(main())
