"""Floor 3, outputs: report text, figures, run and sweep folders, the resiliency view, the gallery."""
