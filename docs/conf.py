"""Sphinx configuration: `make docs` builds this directory into build/docs."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "is24de scoring master"
author = "the scoring team"
copyright = "the scoring team"

extensions = ["myst_parser", "sphinxcontrib.mermaid", "role_reference"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "benchmarks"]

# ```mermaid fences render as diagrams here, as they do on GitHub.
myst_fence_as_directive = ["mermaid"]
# The browser loads mermaid.js from its CDN; pinned like everything else.
mermaid_version = "11.12.1"
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

html_theme = "alabaster"
html_title = project
html_theme_options = {"description": "Provisioning and scoring, as code", "fixed_sidebar": True}
