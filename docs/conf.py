"""Sphinx configuration: `pip install --group docs`, then
`sphinx-build -W -b html docs docs/_build/html` (the installed grokreg is documented)."""
import grokreg

project = "grokreg"
author = "the grokreg developers"
copyright = "grokreg developers"
release = version = grokreg.__version__

extensions = ["myst_parser", "numpydoc", "sphinx.ext.autodoc", "sphinx.ext.autosummary",
              "sphinx.ext.mathjax"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

autosummary_generate = False
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_member_order = "bysource"
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {"description": "Regularization and batching, fast and exact",
                      "page_width": "1100px", "sidebar_width": "240px"}


def skip_metadata_requests(app, what, name, obj, skip, options):
    """scikit-learn's generated set_*_request methods are scikit-learn's to document."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", skip_metadata_requests)
