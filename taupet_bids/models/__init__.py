"""The trained models taupet-bids ships, as MONAI bundle folders, and the code that loads them."""

from pathlib import Path

#: The shipped AD-vs-CN classifier's bundle folder (here, not in its loader, so that the command
#: line can name it without importing PyTorch).
SHIPPED_CLASSIFIER = Path(__file__).resolve().parent / "ad_classifier"
