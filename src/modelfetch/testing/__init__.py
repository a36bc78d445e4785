"""Test kit for code that uses modelfetch (public API).

- `FakeHub`: a real Hub-protocol server on 127.0.0.1, with fault injection and a request log.
- `Fault`: what an injected fault does.
- `MemorySource`: a `ModelAssetSource` over in-memory files, no server needed.
- `write_model_repo`: a realistic sharded-safetensors model repo, deterministic.
- `check_source`: a conformance check for any `ModelAssetSource`, yours included.
- `hub_headers`: the headers the Hub sends with a file, for your own HTTP mocks (respx).
- `mock_repo`: a whole repo (revision info, listing, every file) on a respx router, in one call.
- `FakeHub.environment()`: point a block of code (a script, a notebook) at a FakeHub.
- pytest fixtures `fake_hub`, `hub_env` and `hub_cache`, registered automatically when
  modelfetch is installed (the `pytest11` entry point).
"""

from ._conformance import check_source as check_source
from ._fakehub import CdnMode as CdnMode
from ._fakehub import FakeHub as FakeHub
from ._faults import Fault as Fault
from ._faults import FaultRule as FaultRule
from ._headers import hub_headers as hub_headers
from ._memory import MemorySource as MemorySource
from ._modelrepo import ModelRepoFiles as ModelRepoFiles
from ._modelrepo import write_model_repo as write_model_repo
from ._requestlog import RequestRecord as RequestRecord
from ._respx import mock_repo as mock_repo

__all__ = [
    "CdnMode",
    "FakeHub",
    "Fault",
    "FaultRule",
    "MemorySource",
    "ModelRepoFiles",
    "RequestRecord",
    "check_source",
    "hub_headers",
    "mock_repo",
    "write_model_repo",
]
