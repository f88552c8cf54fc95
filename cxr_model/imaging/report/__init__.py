"""The chest X-ray evaluation report: analysis, figures, failure gallery, HTML, PDF, study report."""
