"""Statistics over seeds, theory, the metrics stage and the findings checked against the original write-up."""
