"""Whether wandb can log in without asking: shared by `ck launch` and `ck doctor` (neither imports the other)."""
from __future__ import annotations

import os
import re
from pathlib import Path


def wandb_api_key_present() -> bool:
    """Whether wandb can log in without asking (env var or ~/.netrc). The key itself is never read out."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc")).expanduser()
    try:
        import netrc as _netrc

        hosts = _netrc.netrc(str(netrc)).hosts
    except (OSError, _netrc.NetrcParseError):
        return False
    base = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    host = re.sub(r"^https?://", "", base).split("/")[0]
    return host in hosts
