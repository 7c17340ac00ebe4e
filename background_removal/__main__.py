"""`python -m background_removal ...`: the background-removal command (see background_removal.cli)."""
import sys

from background_removal.cli import main

sys.exit(main())
