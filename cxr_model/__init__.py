"""cxr_model: the core of the clinician AI dashboard (chest X-ray, ward vitals, evaluation).

Never imports streamlit: the same code serves the UI, the CLI and batch jobs.
"""
__version__ = "0.1.0"
