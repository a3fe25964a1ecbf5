"""Patient-grouped, stratified train/val/test splits (groups) and their checks and report (report)."""
