"""The trained models taupet-bids ships, as MONAI bundle folders, and the code that loads them."""

from pathlib import Path

#: The AD-vs-CN classifier's folder in the package: its configs now, its weights once trained
#: (kept here, not in its loader, so that it can be named without importing PyTorch).
SHIPPED_CLASSIFIER = Path(__file__).resolve().parent / "ad_classifier"
