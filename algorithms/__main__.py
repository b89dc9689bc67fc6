"""``python -m algorithms ...`` is ``cd algorithms && python main.py ...``."""
from .cli import run

run()
