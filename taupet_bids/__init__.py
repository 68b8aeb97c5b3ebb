"""taupet-bids: a BIDS App that turns tau PET studies into regional SUVR tables."""

import os
from pathlib import Path

__version__ = "0.1.0"

# An offline-first BIDS App: nipype must not phone home for its version check, and
# matplotlib needs a writable config folder even in read-only containers.
os.environ.setdefault("NIPYPE_NO_ET", "1")
os.environ.setdefault("MPLCONFIGDIR", str(Path(os.environ.get("TMPDIR", "/tmp")) / "taupet-mpl"))
