"""HTML reports: one page per subject, one for the group, and the QC numbers behind them."""
