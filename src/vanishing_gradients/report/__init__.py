"""Stage `report`: figures, tables and the sections of reports/summary.html."""
