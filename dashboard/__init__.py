"""Helpers shared by the Streamlit pages (the UI layer; ``cxr_model`` never imports streamlit)."""
