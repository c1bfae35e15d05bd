"""Without the http3 extra, `http3=True` is an ImportError naming the extra, and nothing
else changes (run in a child process that cannot import aioquic)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_BLOCK_AIOQUIC = textwrap.dedent(
    """
    import sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == "aioquic" or name.startswith("aioquic."):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, Block())
    import trio, trioclient

    async def main():
        async with trioclient.Client() as client:  # the default needs no aioquic
            pass
        try:
            trioclient.Client(http3=True)
        except ImportError as exc:
            print("ImportError:", exc)
        try:
            trioclient.HTTPTransport(http3=True, http1=False, http2=False)
        except ImportError as exc:
            print("ImportError:", exc)

    trio.run(main)
    """
)


def test_missing_extra_is_an_import_error_naming_it() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run(
        [sys.executable, "-c", _BLOCK_AIOQUIC], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    expected = (
        "ImportError: Using http3=True requires the aioquic package:"
        " pip install 'trioclient[http3]'"
    )
    assert result.stdout.splitlines() == [expected, expected]
