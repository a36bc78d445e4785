"""A script (no pytest) pointed at a local FakeHub: what docs/testing.md shows."""

from huggingface_hub import hf_hub_download

import modelfetch
from modelfetch.testing import FakeHub

with FakeHub() as hub, hub.environment() as cache:
    hub.add_file("org/model", "config.json", b"{}")
    print(modelfetch.fetch_sync("org/model", "config.json"))  # in `cache`
    print(hf_hub_download("org/model", "config.json"))  # the same file, found in the cache
