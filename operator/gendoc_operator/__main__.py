"""`python -m gendoc_operator`: the same as `gendoc operator`."""

import sys

from .main import run
from .settings import OperatorSettings

sys.exit(run(OperatorSettings()))
