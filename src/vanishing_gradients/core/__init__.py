"""What every stage shares: parameters and their schema, studies expanded into variants, the dataset, model
specs, the extension tables, the statistics table, cost estimates, safe writes and provenance."""
