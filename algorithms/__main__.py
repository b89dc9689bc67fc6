"""``python -m algorithms ...`` is ``cd algorithms && python main.py ...``."""
import sys

from .cli import main

sys.exit(main())
