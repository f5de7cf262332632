"""Allow `python -m sfm_archiver`."""
import sys

from sfm_archiver.cli import main

sys.exit(main())
