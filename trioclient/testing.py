"""Test helpers for code that uses trioclient: the `trioclient_mock` pytest fixture's types.

The fixture itself is registered by the `pytest11` entry point when trioclient is
installed; import from here only to annotate tests (`trioclient_mock: TrioclientMock`) or to
catch `UnexpectedRequest`. Importing this module imports pytest.
"""

from ._pytest_plugin import Matchers as Matchers
from ._pytest_plugin import TrioclientMock as TrioclientMock
from ._pytest_plugin import UnexpectedRequest as UnexpectedRequest

__all__ = ["Matchers", "TrioclientMock", "UnexpectedRequest"]
