"""``python -m algorithms ...`` is ``cd algorithms && python main.py ...``."""
import sys

from . import interrupts
from .cli import main

code = main()
interrupts.hold_while_exiting(code)
sys.exit(code)
