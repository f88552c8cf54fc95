"""Pure metrics on arrays (labels, scores): arrays in, numbers out. Imports nothing of cxr_model."""
